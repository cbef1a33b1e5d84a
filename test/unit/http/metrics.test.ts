// Lookup metrics are handed to prom-client in batches: every scrape must still see every lookup,
// once, in the right bucket.
import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../../src/http/metrics.js';

const series = (text: string, name: string) =>
  Object.fromEntries(
    text
      .split('\n')
      .filter((line) => line.startsWith(name))
      .map((line) => {
        const at = line.lastIndexOf(' ');
        return [line.slice(0, at), Number(line.slice(at + 1))];
      }),
  );

describe('lookup metrics', () => {
  it('counts every lookup by result and duration at each scrape, across batches, without counting twice', async () => {
    const metrics = createMetrics();
    for (let i = 0; i < 300; i++) metrics.events.lookup('found', 0.002); // more than one batch
    metrics.events.lookup('not_found', 0.0004);
    metrics.events.lookup('unavailable', 3);

    const first = await metrics.registry.metrics();
    expect(series(first, 'idmount_lookups_total')).toEqual({
      'idmount_lookups_total{result="found"}': 300,
      'idmount_lookups_total{result="not_found"}': 1,
      'idmount_lookups_total{result="invalid"}': 0,
      'idmount_lookups_total{result="unavailable"}': 1,
    });
    const seconds = series(first, 'idmount_lookup_duration_seconds');
    expect(seconds).toMatchObject({
      'idmount_lookup_duration_seconds_bucket{le="0.001",result="found"}': 0,
      'idmount_lookup_duration_seconds_bucket{le="0.005",result="found"}': 300,
      'idmount_lookup_duration_seconds_count{result="found"}': 300,
      'idmount_lookup_duration_seconds_bucket{le="0.0005",result="not_found"}': 1,
      'idmount_lookup_duration_seconds_bucket{le="2.5",result="unavailable"}': 0,
      'idmount_lookup_duration_seconds_bucket{le="5",result="unavailable"}': 1,
      'idmount_lookup_duration_seconds_sum{result="unavailable"}': 3,
    });
    expect(seconds['idmount_lookup_duration_seconds_sum{result="found"}']).toBeCloseTo(0.6, 9);

    metrics.events.lookup('found', 0.02);
    const second = await metrics.registry.metrics();
    expect(series(second, 'idmount_lookups_total')['idmount_lookups_total{result="found"}']).toBe(301);
    expect(
      series(second, 'idmount_lookup_duration_seconds')[
        'idmount_lookup_duration_seconds_bucket{le="0.025",result="found"}'
      ],
    ).toBe(301);
    expect(series(await metrics.registry.metrics(), 'idmount_lookups_total')).toEqual(
      series(second, 'idmount_lookups_total'),
    );
  });
});
