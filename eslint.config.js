import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'data/', 'coverage/', 'bench/out/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', URL: 'readonly', AbortController: 'readonly', performance: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  // The dashboard's script runs in the browser.
  {
    files: ['src/api/static/**/*.js'],
    languageOptions: { sourceType: 'script', globals: Object.fromEntries(['window', 'document', 'location', 'history', 'sessionStorage', 'fetch', 'requestAnimationFrame', 'HTMLButtonElement', 'TextDecoderStream'].map((g) => [g, 'readonly'])) },
  },
);
