import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Real servers (slapd, Samba, Keycloak) start inside test files; two cores, so two workers.
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 30_000,
    // Keycloak boots in tens of seconds on a small machine.
    hookTimeout: 240_000,
    reporters: ['default'],
    projects: [
      {
        extends: true,
        test: {
          name: 'main',
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, 'test/integration/keycloak/**'],
        },
      },
      // One Keycloak (globalSetup) for all Keycloak tests; it only starts when one of them runs.
      {
        extends: true,
        test: {
          name: 'keycloak',
          include: ['test/integration/keycloak/**/*.test.ts'],
          globalSetup: ['test/harness/keycloak-global-setup.ts'],
        },
      },
    ],
  },
});
