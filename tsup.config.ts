// Builds every public entry point as ESM + CJS with declarations for both, and the command-line
// tool as one ESM file with a shebang (`bin` in package.json).
import { defineConfig } from 'tsup';

const external = ['@bitrix24/b24jssdk', 'vitest', 'better-sqlite3', 'pg', 'ioredis', 'redis', '@opentelemetry/api'];

export default defineConfig([
  {
    entry: {
      index: 'src/index.ts',
      store: 'src/store-entry.ts',
      'testing/index': 'src/testing/index.ts',
      'stores/postgres': 'src/store/postgres/index.ts',
      'stores/redis': 'src/store/redis/index.ts',
      'stores/sqlite': 'src/store/sqlite/index.ts',
      otel: 'src/otel/index.ts',
    },
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    clean: true,
    target: 'node20',
    platform: 'node',
    splitting: true,
    treeshake: true,
    external,
  },
  {
    // The `b24-portal-tokens` executable: standalone (no shared chunks), ESM, no declarations.
    entry: { cli: 'src/cli/main.ts' },
    format: ['esm'],
    dts: false,
    sourcemap: true,
    clean: false,
    target: 'node20',
    platform: 'node',
    splitting: false,
    treeshake: true,
    banner: { js: '#!/usr/bin/env node' },
    external,
  },
]);
