// ESLint flat config for the pages' own ES modules (the vendored libraries are not ours).
// CI: `npm ci && npx eslint src/ssehub/asgi/static/js` (no build step: the files are served as is).
import js from "@eslint/js";
import globals from "globals";

export default [
  { ignores: ["src/ssehub/asgi/static/vendor/**", "node_modules/**", "bench/**"] },
  js.configs.recommended,
  {
    files: ["src/ssehub/asgi/static/js/**/*.js"],
    languageOptions: {
      ecmaVersion: 2023,
      sourceType: "module",
      globals: { ...globals.browser },
    },
    rules: {
      eqeqeq: ["error", "always", { null: "ignore" }],
      "no-var": "error",
      "prefer-const": "error",
      "no-unused-vars": ["error", { args: "after-used", caughtErrors: "none" }],
      "no-implicit-globals": "error",
      "no-eval": "error",
      "no-implied-eval": "error",
      "no-new-func": "error",
      "no-restricted-properties": [
        "error",
        { property: "innerHTML", message: "insert text with textContent, HTML only through markdown.js" },
        { property: "outerHTML", message: "insert text with textContent, HTML only through markdown.js" },
      ],
    },
  },
  {
    files: ["scripts/**/*.mjs", "eslint.config.js"],
    languageOptions: { ecmaVersion: 2023, sourceType: "module", globals: { ...globals.node } },
  },
];
