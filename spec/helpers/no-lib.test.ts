/** The helpers check the library from the outside (like Autobahn): none of them imports lib/. */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { it } from 'node:test';

it('no file of spec/helpers/ imports from lib/', () => {
  const dir = new URL('./', import.meta.url);
  const files = readdirSync(dir).filter((f) => f.endsWith('.ts'));
  assert.ok(files.includes('frames.ts') && files.includes('raw-client.ts'), files.join(', '));
  for (const file of files) {
    const source = readFileSync(new URL(file, dir), 'utf8');
    const imports = [...source.matchAll(/\b(?:import|export)\b[^'"`;]*?\bfrom\s*['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => m[1] ?? m[2]!);
    for (const specifier of imports) assert.doesNotMatch(specifier, /(^|\/)lib\//, `spec/helpers/${file} imports ${specifier}`);
  }
});
