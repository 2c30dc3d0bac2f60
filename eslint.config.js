// Lint rules: typescript-eslint's recommended set over src/ and test/, tuned to the
// code's existing style where it is a deliberate choice (see the comments below).
import js from "@eslint/js";
import tseslint from "typescript-eslint";
import globals from "globals";

export default tseslint.config(
  { ignores: ["dist/", "dist-bench/", "node_modules/", "coverage/", "examples/state-app/durable-streams-state.js"] },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      // Header and name checks reject control characters on purpose.
      "no-control-regex": "off",
      // `map.get(k)?.push(v) ?? map.set(k, [v])` is an idiom the code uses.
      "@typescript-eslint/no-unused-expressions": ["error", { allowShortCircuit: true, allowTernary: true }],
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
    },
  },
  // The inspector's and the examples' plain ES modules run in the browser (the examples' vendored copy is left as published).
  { files: ["web/**/*.js", "examples/**/*.js"], languageOptions: { globals: { ...globals.browser } } },
);
