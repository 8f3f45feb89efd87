// Builds every public entry point as ESM + CJS with declarations for both.
import { defineConfig } from 'tsup';

export default defineConfig({
  entry: {
    index: 'src/index.ts',
    'testing/index': 'src/testing/index.ts',
    'stores/postgres': 'src/store/postgres/index.ts',
    'stores/redis': 'src/store/redis/index.ts',
    'stores/sqlite': 'src/store/sqlite/index.ts',
  },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  platform: 'node',
  splitting: true,
  treeshake: true,
  external: ['@bitrix24/b24jssdk', 'vitest', 'better-sqlite3', 'pg', 'ioredis', 'redis'],
});
