// Encodes a UTF-8 text file with @huggingface/tokenizers (the app's tokenizer library) and writes the ids
// as little-endian int32, for test_tokenizer_agreement.py.
import { readFileSync, writeFileSync } from 'node:fs'
import { Tokenizer } from '@huggingface/tokenizers'

const [tokenizerPath, textPath, outPath] = process.argv.slice(2)
const tok = new Tokenizer(JSON.parse(readFileSync(tokenizerPath, 'utf8')), {})
const ids = tok.encode(readFileSync(textPath, 'utf8'), { add_special_tokens: false }).ids
writeFileSync(outPath, Buffer.from(Int32Array.from(ids).buffer))
