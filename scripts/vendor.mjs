#!/usr/bin/env node
// Copy the browser builds of the page libraries from node_modules/ into
// src/ssehub/asgi/static/vendor/, with their licence texts and a VERSIONS.json manifest.
//
//   npm ci && node scripts/vendor.mjs          (or: npm run vendor)
//   node scripts/vendor.mjs --check             exit 1 when the checked-in copies are stale
//
// The vendored files are committed, so neither pip users nor the tests need node.
// Files are copied byte for byte, except that a trailing `//# sourceMappingURL=` comment is
// dropped (the .map files are not shipped; browsers would fetch them and log a 404).

import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const nm = join(root, "node_modules");
const out = join(root, "src", "ssehub", "asgi", "static", "vendor");
const check = process.argv.includes("--check");

// [package, file inside the package, name in vendor/]
const FILES = [
  ["markdown-it", "dist/browser/markdown-it.esm.min.mjs", "markdown-it.min.js"],
  ["dompurify", "dist/purify.es.mjs", "purify.es.js"],
  ["@highlightjs/cdn-assets", "es/highlight.min.js", "highlight.min.js"],
  ["@highlightjs/cdn-assets", "styles/github.min.css", "hljs-github.min.css"],
  ["@highlightjs/cdn-assets", "styles/github-dark.min.css", "hljs-github-dark.min.css"],
];

// Licence texts: each package shipped, plus the packages bundled inside markdown-it's browser build.
const LICENSES = [
  ["markdown-it", "LICENSE"],
  ["dompurify", "LICENSE"],
  ["dompurify", "LICENSE-MPL"],
  ["@highlightjs/cdn-assets", "LICENSE"],
  ["entities", "LICENSE"],
  ["linkify-it", "LICENSE"],
  ["mdurl", "LICENSE"],
  ["uc.micro", "LICENSE.txt"],
  ["punycode.js", "LICENSE-MIT.txt"],
];

function pkgVersion(name) {
  return JSON.parse(readFileSync(join(nm, name, "package.json"), "utf8")).version;
}

function stripSourceMap(text) {
  return text.replace(/\n?\/\/# sourceMappingURL=\S+\s*$/, "\n");
}

const wanted = new Map(); // vendor-relative path -> Buffer
const manifest = { generated_by: "scripts/vendor.mjs", packages: {}, files: {} };

for (const [pkg, src, dest] of FILES) {
  const from = join(nm, pkg, src);
  if (!existsSync(from)) {
    console.error(`missing ${from}: run \`npm ci\` first`);
    process.exit(2);
  }
  let data = readFileSync(from);
  if (/\.(m?js)$/.test(src)) data = Buffer.from(stripSourceMap(data.toString("utf8")), "utf8");
  wanted.set(dest, data);
  manifest.packages[pkg] = pkgVersion(pkg);
  manifest.files[dest] = {
    package: pkg,
    source: src,
    sha256: createHash("sha256").update(data).digest("hex"),
  };
}
for (const [pkg, file] of LICENSES) {
  const dest = `LICENSES/${pkg.replace(/^@/, "").replace("/", "-")}--${file}`;
  wanted.set(dest, readFileSync(join(nm, pkg, file)));
  manifest.packages[pkg] ??= pkgVersion(pkg);
}
wanted.set("VERSIONS.json", Buffer.from(JSON.stringify(manifest, null, 2) + "\n", "utf8"));

function listTree(dir, prefix = "") {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? listTree(join(dir, e.name), `${prefix}${e.name}/`) : [`${prefix}${e.name}`],
  );
}

if (check) {
  const have = new Set(listTree(out));
  let stale = false;
  for (const [rel, data] of wanted) {
    const p = join(out, rel);
    if (!have.delete(rel) || !readFileSync(p).equals(data)) {
      console.error(`stale: ${rel}`);
      stale = true;
    }
  }
  for (const rel of have) {
    console.error(`unexpected: ${rel}`);
    stale = true;
  }
  process.exit(stale ? 1 : 0);
}

rmSync(out, { recursive: true, force: true });
for (const [rel, data] of wanted) {
  const p = join(out, rel);
  mkdirSync(dirname(p), { recursive: true });
  writeFileSync(p, data);
}
console.log(`vendored ${wanted.size} files into ${out}`);
for (const [pkg, v] of Object.entries(manifest.packages)) console.log(`  ${pkg}@${v}`);
