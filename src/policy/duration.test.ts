import { describe, expect, it } from 'vitest';
import { parseDuration, parseRate } from './duration.js';

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['1s', 1_000],
    ['30s', 30_000],
    ['15m', 900_000],
    ['24h', 86_400_000],
    ['1d', 86_400_000],
    ['007s', 7_000],
  ])('%s is %i ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each([
    '',
    '0s',
    '0ms',
    '1',
    's',
    '1.5h',
    '-1s',
    '+1s',
    '1 s',
    '1S',
    '1w',
    '1y',
    '1h30m',
    ' 1s',
    '1s ',
    '99999999999999999999d',
    '1e3s',
  ])('%j is not a duration', (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });

  it('is at most 100 years (36500d), so that times computed from it stay valid dates', () => {
    expect(parseDuration('36500d')).toBe(36_500 * 86_400_000);
    expect(parseDuration('876000h')).toBe(36_500 * 86_400_000);
    expect(parseDuration('36501d')).toBeUndefined();
    expect(parseDuration('3153600000001ms')).toBeUndefined();
    expect(parseDuration('104249992d')).toBeUndefined();
  });
});

describe('parseRate', () => {
  it.each([
    ['10/1m', { count: 10, periodMs: 60_000 }],
    ['5/s', { count: 5, periodMs: 1_000 }],
    ['1/500ms', { count: 1, periodMs: 500 }],
    ['100/24h', { count: 100, periodMs: 86_400_000 }],
  ])('%s', (text, rate) => {
    expect(parseRate(text)).toEqual(rate);
  });

  it.each([
    '0/1m',
    '10/0m',
    '10',
    '10/',
    '/1m',
    '10/1',
    '10/1w',
    '-1/1m',
    '1.5/1m',
    '10 / 1m',
    'ten/1m',
  ])('%j is not a rate', (text) => {
    expect(parseRate(text)).toBeUndefined();
  });
});
