// The chart library is vendored (vendor/uplot) and served by Sluice itself: the files are the
// npm package's, byte for byte, and the page loads nothing from anywhere else.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DASHBOARD_HTML } from '../../src/api/dashboard-page.js';
import { DASHBOARD_SCRIPT } from '../../src/api/dashboard-script.js';

const uplotDir = path.dirname(createRequire(import.meta.url).resolve('uplot/package.json'));
const vendored = new URL('../../vendor/uplot/', import.meta.url);

describe('dashboard assets', () => {
  it('vendors uPlot unchanged from the npm package', () => {
    for (const [file, from] of [['uPlot.iife.min.js', 'dist/uPlot.iife.min.js'], ['uPlot.min.css', 'dist/uPlot.min.css'], ['LICENSE', 'LICENSE']]) {
      expect(fs.readFileSync(new URL(file!, vendored)).equals(fs.readFileSync(path.join(uplotDir, from!))), file).toBe(true);
    }
    const version = JSON.parse(fs.readFileSync(path.join(uplotDir, 'package.json'), 'utf8')).version;
    expect(fs.readFileSync(new URL('README.md', vendored), 'utf8')).toContain(`uPlot ${version}`);
  });

  it('loads nothing from another origin', () => {
    for (const text of [DASHBOARD_HTML, DASHBOARD_SCRIPT]) expect(text).not.toMatch(/(src|href)=["']?(https?:)?\/\//);
    expect(DASHBOARD_SCRIPT).not.toMatch(/https?:\/\//);
  });

  it('is a script the browser can parse', () => {
    expect(() => new Function(DASHBOARD_SCRIPT)).not.toThrow();
  });
});
