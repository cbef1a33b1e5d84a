import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Real servers (slapd, Samba, Keycloak) start inside test files; two cores, so two workers.
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 30_000,
    // Keycloak boots in tens of seconds on a small machine.
    hookTimeout: 240_000,
    reporters: ['default'],
  },
});
