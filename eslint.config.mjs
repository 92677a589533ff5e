import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  // The example plugin is a package of its own: archive-depot's types reach it only once installed in its folder
  // (test/plugins does that, after lint in CI); its strict build and its ts-jest run check it there.
  { ignores: ['dist/', 'node_modules/', 'data/', 'coverage/', '.tmp/', '.bench-variant/', 'moodle/', 'examples/**/*.php', 'examples/depot-driver-example/'] },
  js.configs.recommended,
  // Type-checked: floating and misused promises, unsafe any, awaits that do nothing.
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
      globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', require: 'readonly', module: 'writable', __dirname: 'readonly' },
    },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  // Tests: jest's asymmetric matchers (expect.any, expect.objectContaining) are typed `any`, and fakes
  // implement async interfaces without awaiting; floating and misused promises stay errors here too.
  {
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/unbound-method': 'off',
      '@typescript-eslint/require-await': 'off',
    },
  },
  // Plain JavaScript (bin/, configs): no type information to check against.
  { files: ['**/*.js', '**/*.cjs', '**/*.mjs', 'bin/*'], ...tseslint.configs.disableTypeChecked },
);
