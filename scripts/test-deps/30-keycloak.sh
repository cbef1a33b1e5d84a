#!/usr/bin/env bash
# Keycloak for the keycloak source and OIDC tests: the Quarkus server distribution from Maven
# Central (fetched by Maven, which knows its repository), unpacked once into $IDMOUNT_CACHE, and a
# JDK it supports (17, 21 or 25). test/harness/keycloak.ts reads the same version from here.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

KEYCLOAK_VERSION="${IDMOUNT_KEYCLOAK_VERSION:-26.5.2}"
dest="$IDMOUNT_CACHE/keycloak-$KEYCLOAK_VERSION"

# A JDK Keycloak 26 supports; Debian's openjdk-17 when the machine has none.
has_jdk() {
  local java
  for java in ${JAVA_HOME:+"$JAVA_HOME/bin/java"} /usr/lib/jvm/*/bin/java; do
    [ -x "$java" ] || continue
    "$java" -version 2>&1 | grep -Eq 'version "(17|21|25)[."]' && return 0
  done
  return 1
}
has_jdk || apt_install openjdk-17-jre-headless
command -v mvn >/dev/null || apt_install maven unzip
command -v unzip >/dev/null || apt_install unzip

if [ -x "$dest/bin/kc.sh" ]; then
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mvn -q -B dependency:copy \
  -Dartifact="org.keycloak:keycloak-quarkus-dist:$KEYCLOAK_VERSION:zip" \
  -DoutputDirectory="$work"
unzip -q "$work/keycloak-quarkus-dist-$KEYCLOAK_VERSION.zip" -d "$work/unpacked"
rm -rf "$dest.partial"
mv "$work/unpacked/keycloak-$KEYCLOAK_VERSION" "$dest.partial"
mv "$dest.partial" "$dest"
echo "Keycloak $KEYCLOAK_VERSION ready in $dest"
