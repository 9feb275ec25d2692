// Text shown to people, the same in main, the page and the CLI: token texts with visible whitespace, and
// paths and messages cut to a readable length.
/** How a byte that is not (part of) a readable character is shown: <0xNN>, the byte-fallback tokens' notation. */
export function byteToken(b: number): string {
  return `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`
}

/**
 * Whitespace made visible: space → ·, newline → ↩, tab → →; other control characters (carriage return,
 * form feed, NUL …), which a font draws as nothing or a box, as their byte: <0x0D>.
 */
export function visibleToken(s: string): string {
  return s
    .replace(/ /g, '·')
    .replace(/\n/g, '↩')
    .replace(/\t/g, '→')
    .replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, (c) => byteToken(c.charCodeAt(0)))
}

/** A token id's display text, or <id> for an id the tokenizer does not name (padding rows of W_U). */
export function tokenText(display: readonly string[], id: number): string {
  return display[id] ?? `<${id}>`
}

const MAX_PATH_TEXT = 160

/** A path for a message: whole when short, else its start and end around an ellipsis (a 1 MB path stays a line). */
export function pathText(path: string): string {
  if (path.length <= MAX_PATH_TEXT) return path
  const keep = Math.floor((MAX_PATH_TEXT - 1) / 2)
  return `${path.slice(0, keep)}…${path.slice(path.length - keep)}`
}

/** Caps a message for people at `max` characters (error messages cross IPC and reach logs). */
export function capText(text: string, max = 1000): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`
}
