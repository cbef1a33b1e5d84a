// vitest globalSetup of the `keycloak` project: one Keycloak for every Keycloak test file (it boots
// in a minute or more on two cores), handed to the files through `provide('keycloak')`.
// IDMOUNT_TEST_KEYCLOAK_URL (+ _ADMIN, _PASSWORD) points the tests at a Keycloak already running
// (started by this harness earlier), to iterate without paying the boot every time.
import type { TestProject } from 'vitest/node';
import { startKeycloak } from './keycloak.js';

export default async function setup(project: TestProject) {
  const url = process.env.IDMOUNT_TEST_KEYCLOAK_URL;
  if (url !== undefined) {
    project.provide('keycloak', {
      url,
      adminUser: process.env.IDMOUNT_TEST_KEYCLOAK_ADMIN ?? 'admin',
      adminPassword: process.env.IDMOUNT_TEST_KEYCLOAK_PASSWORD ?? '',
    });
    return;
  }
  const keycloak = await startKeycloak();
  console.log(`Keycloak ready at ${keycloak.url} after ${(keycloak.bootMs / 1000).toFixed(1)} s`);
  project.provide('keycloak', {
    url: keycloak.url,
    adminUser: keycloak.adminUser,
    adminPassword: keycloak.adminPassword,
  });
  return async () => {
    await keycloak.stop();
  };
}
