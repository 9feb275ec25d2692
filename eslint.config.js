import tseslint from 'typescript-eslint'
import vue from 'eslint-plugin-vue'

// The floors of the app (docs/ARCHITECTURE.md), lowest first. A file may import from its own floor and the
// floors below; an import of a floor above (or beside, for the page) fails lint. Written with
// no-restricted-imports (a regex over the import string): every folder here sits at main/<floor>/, so
// '../<floor>' from a file one level down names main/<floor>. test/unit/floors.test.ts shows it fails.
const FLOORS = ['files', 'native', 'jobs', 'bundle', 'compute', 'trace', 'cache', 'session', 'app', 'transports']
const above = (floor) => FLOORS.slice(FLOORS.indexOf(floor) + 1).concat(['index'])

const floorRules = FLOORS.filter((f) => f !== 'transports').map((floor) => ({
  files: [`main/${floor}/**/*.ts`],
  rules: {
    'no-restricted-imports': [
      'error',
      {
        patterns: [
          {
            regex: `^(\\.\\./)+(${above(floor).join('|')})(/|\\.ts$|$)`,
            message: `main/${floor} may import only from its own floor, the floors below it (${FLOORS.slice(0, FLOORS.indexOf(floor)).join(', ') || 'none'}) and common/.`,
          },
          { regex: '(^|/)(renderer|preload)(/|$)', message: 'main never imports the page or the preload.' },
        ],
      },
    ],
  },
}))

export default tseslint.config(
  { ignores: ['out/**', 'dist/**', 'node_modules/**', 'resources/**', 'test/fixtures/**', 'tools/**', 'test/e2e/output/**', '.cache/**', '.native/**'] },
  ...tseslint.configs.recommended,
  ...vue.configs['flat/recommended'],
  {
    files: ['**/*.vue'],
    languageOptions: { parserOptions: { parser: tseslint.parser } },
  },
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-syntax': ['error', { selector: 'CallExpression[callee.property.name="only"]', message: 'no committed .only' }],
    },
  },
  {
    files: ['renderer/**/*.{ts,vue}'],
    rules: { 'no-console': ['error', { allow: ['warn', 'error'] }] },
  },
  ...floorRules,
  {
    // The page and the preload see the contract (common/) and nothing of main.
    files: ['renderer/**/*.{ts,vue}', 'preload/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ regex: '(^|/)main(/|$)', message: 'the page and the preload import only common/ (the contract), never main/.' }] },
      ],
    },
  },
  {
    // The leaf: importable by main, preload and renderer, so it imports none of them and nothing of Node.
    files: ['common/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { regex: '(^|/)(main|renderer|preload)(/|$)', message: 'common/ is the leaf: it imports nothing of main/, preload/ or renderer/.' },
            { regex: '^node:', message: 'common/ runs in the page too: no Node built-ins.' },
          ],
        },
      ],
    },
  },
)
