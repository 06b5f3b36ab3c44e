import { describe, expect, it } from 'vitest';
import { srcEngine } from '../engine.js';
import { generateScenario, RULE_COUNT, TOOL_COUNT } from './generate.js';
import { differential, prepare } from './subjects.js';

/**
 * The benchmark compares implementations that must decide alike; this checks that they do
 * (writ's evaluateScope and decideScope, the hand-written floor and Cedar) on a smaller
 * mix, and that the check would notice if one of them did not.
 */
describe('scope benchmark scenario', () => {
  const p = prepare(srcEngine, { requests: 300 });

  it('has the size the requirement asks for', () => {
    expect(p.scenario.tools).toHaveLength(TOOL_COUNT);
    expect(p.scenario.rules).toHaveLength(RULE_COUNT);
    expect(Object.keys(p.scenario.cedarPolicies)).toHaveLength(RULE_COUNT);
  });

  it('is the same for the same seed and differs for another', () => {
    const again = generateScenario({ requests: 300 });
    expect(again.policyYaml).toBe(p.scenario.policyYaml);
    expect(again.floorSource).toBe(p.scenario.floorSource);
    expect(again.requests).toEqual(p.scenario.requests);
    expect(generateScenario({ seed: 7, requests: 300 }).policyYaml).not.toBe(p.scenario.policyYaml);
  });

  const report = differential(p);

  it('gives writ, the floor and Cedar the same outcome on every request', () => {
    expect(report.disagreements).toEqual([]);
    expect(report.requests).toBe(300);
  });

  it('exercises every outcome, condition errors and unnamed tools', () => {
    expect(report.outcomes.allow).toBeGreaterThan(30);
    expect(report.outcomes.deny).toBeGreaterThan(30);
    expect(report.outcomes.approval_required).toBeGreaterThan(30);
    expect(report.conditionErrors).toBeGreaterThan(0);
    expect(report.unnamed).toBeGreaterThan(0);
  });

  it('notices an implementation that decides differently', () => {
    const floor = p.floor;
    const wrongFloor = differential({
      ...p,
      floor: (a) => (a.tool === 'files.read' ? 'allow' : floor(a)),
    });
    expect(wrongFloor.disagreements.some((d) => d.floor !== d.writ.outcome)).toBe(true);
    // Reading a forbid as an allow: the rules that decided no longer match Cedar's.
    const effects = new Map(p.scenario.effects).set('flow[0]', 'allow');
    const misread = differential({ ...p, scenario: { ...p.scenario, effects } });
    expect(misread.disagreements.length).toBeGreaterThan(0);
  });
});
