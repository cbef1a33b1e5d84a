// values.yaml and values.schema.json describe the same keys: every key in one is in the other,
// the chart's own objects forbid unknown keys, and every default says why it is what it is.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML, { isMap, isScalar, type Pair, type YAMLMap } from 'yaml';
import { CHART_DIR } from './tools.js';

interface SchemaNode {
  type?: string | string[];
  properties?: Record<string, SchemaNode>;
  additionalProperties?: boolean | SchemaNode;
  [key: string]: unknown;
}

const valuesText = readFileSync(join(CHART_DIR, 'values.yaml'), 'utf8');
const values = YAML.parse(valuesText) as Record<string, unknown>;
const schema = JSON.parse(readFileSync(join(CHART_DIR, 'values.schema.json'), 'utf8')) as SchemaNode;

/** Keys Helm adds to every chart's values; the schema allows them without values.yaml listing them. */
const HELM_KEYS = new Set(['global']);

/** Walks the schema's own objects (those with `properties`) beside the values at the same path. */
function walk(
  node: SchemaNode,
  value: unknown,
  path: string,
  visit: (path: string, node: SchemaNode, value: unknown) => void,
) {
  visit(path, node, value);
  for (const [key, child] of Object.entries(node.properties ?? {})) {
    if (child.properties !== undefined) {
      walk(
        child,
        (value as Record<string, unknown> | undefined)?.[key],
        path ? `${path}.${key}` : key,
        visit,
      );
    }
  }
}

describe('values.schema.json is in step with values.yaml', () => {
  it('values.yaml names its schema on line 1, for editors', () => {
    expect(valuesText.split('\n')[0]).toBe('# yaml-language-server: $schema=values.schema.json');
  });

  it('the schema is JSON Schema draft-07, which Helm validates values with', () => {
    expect(schema.$schema).toBe('http://json-schema.org/draft-07/schema#');
  });

  it('every key of every chart object appears in both files', () => {
    const mismatches: string[] = [];
    walk(schema, values, '', (path, node, value) => {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        mismatches.push(
          `${path || '(root)'}: an object in the schema but ${JSON.stringify(value)} in values.yaml`,
        );
        return;
      }
      const inSchema = Object.keys(node.properties ?? {}).filter((k) => path !== '' || !HELM_KEYS.has(k));
      const inValues = Object.keys(value);
      for (const key of inValues.filter((k) => !inSchema.includes(k))) {
        mismatches.push(`${path ? `${path}.` : ''}${key}: in values.yaml, missing from the schema`);
      }
      for (const key of inSchema.filter((k) => !inValues.includes(k))) {
        mismatches.push(`${path ? `${path}.` : ''}${key}: in the schema, missing from values.yaml`);
      }
    });
    expect(mismatches).toEqual([]);
  });

  it("the chart's own objects forbid unknown keys, so a misspelt value fails instead of being ignored", () => {
    const open: string[] = [];
    walk(schema, values, '', (path, node) => {
      if (node.additionalProperties !== false) open.push(path || '(root)');
    });
    expect(open).toEqual([]);
  });

  it('every leaf value has a schema type (nothing is accepted untyped)', () => {
    const untyped: string[] = [];
    walk(schema, values, '', (path, node) => {
      for (const [key, child] of Object.entries(node.properties ?? {})) {
        if (child.type === undefined && child.enum === undefined) untyped.push(path ? `${path}.${key}` : key);
      }
    });
    expect(untyped).toEqual([]);
  });
});

describe('values.yaml explains its defaults', () => {
  /**
   * Leaf keys nobody explains: a key is explained by a comment of its own, by one on an enclosing
   * block, or (a block) when each of its keys is. The yaml library files a comment written above a
   * block's first key under the block itself, so that counts for the first key.
   */
  function unexplained(map: YAMLMap, path: string, parentCommented: boolean, out: string[]) {
    (map.items as Pair[]).forEach((pair, i) => {
      const key = isScalar(pair.key) ? String(pair.key.value) : '?';
      const keyPath = path ? `${path}.${key}` : key;
      const commented =
        parentCommented ||
        Boolean((pair.key as { commentBefore?: string }).commentBefore) ||
        Boolean((pair.value as { comment?: string } | null)?.comment) ||
        (i === 0 && Boolean(map.commentBefore));
      if (isMap(pair.value) && pair.value.items.length > 0) unexplained(pair.value, keyPath, commented, out);
      else if (!commented) out.push(keyPath);
    });
  }

  it('every key has a why-comment (on itself or on the block it belongs to)', () => {
    const doc = YAML.parseDocument(valuesText);
    const out: string[] = [];
    // The first key's comment block is attached to the document, after the schema line and header.
    const root = doc.contents as YAMLMap;
    const first = root.items[0] as Pair;
    (first.key as { commentBefore?: string }).commentBefore ||= doc.commentBefore
      ?.split('\n')
      .slice(3)
      .join('\n');
    unexplained(root, '', false, out);
    expect(out).toEqual([]);
  });

  it('the defaults are secure: NetworkPolicy and PDB on, non-root read-only pod', () => {
    expect(values).toMatchObject({
      networkPolicy: { enabled: true },
      podDisruptionBudget: { enabled: true },
      podSecurityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
      containerSecurityContext: {
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ['ALL'] },
      },
      serviceAccount: { create: true },
    });
  });
});
