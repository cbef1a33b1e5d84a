import { configDefaults, defineConfig } from 'vitest/config';

// Tests against a real kube-apiserver (test/harness/kube.ts).
const KUBE_TESTS = ['test/integration/kube/**/*.test.ts', 'test/deploy/helm-install.test.ts'];

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
          exclude: [...configDefaults.exclude, 'test/integration/keycloak/**', ...KUBE_TESTS],
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
      // One Kubernetes control plane (globalSetup) for all tests that need a real API server; it
      // only starts when one of them runs.
      {
        extends: true,
        test: {
          name: 'kube',
          include: KUBE_TESTS,
          globalSetup: ['test/harness/kube-global-setup.ts'],
        },
      },
    ],
  },
});
