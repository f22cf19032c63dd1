import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ComponentError, jobEnvironment, parseComponent, readComponent, renderComponent } from '../../../harness/gitlab-component.js';

const templatePath = path.resolve(import.meta.dirname, '../../../../gitlab/templates/kiln.yml');

describe('gitlab/templates/kiln.yml', () => {
  it('declares the inputs with their types and defaults', async () => {
    const component = await readComponent(templatePath);
    const summary = Object.fromEntries(Object.entries(component.inputs).map(([name, spec]) => [name, [spec.type, spec.default]]));
    expect(summary).toMatchObject({
      dockerfile: ['string', 'Dockerfile'],
      context: ['string', ''],
      destinations: ['string', ''],
      'build-args': ['string', ''],
      caps: ['string', ''],
      'snapshot-mode': ['string', 'auto'],
      cache: ['boolean', false],
      'cache-repo': ['string', ''],
      stage: ['string', 'build'],
      'job-name': ['string', 'kiln-build'],
    });
    expect(component.inputs.image?.default).toMatch(/:debug$/);
    expect(component.inputs['snapshot-mode']?.options).toEqual(['auto', 'full', 'redo', 'time', 'overlay']);
    for (const [name, spec] of Object.entries(component.inputs)) expect(spec.description, name).toBeTruthy();
  });

  it('uses only declared inputs, and every declared one', async () => {
    const component = await readComponent(templatePath);
    expect([...component.usedInputs].sort()).toEqual(Object.keys(component.inputs).sort());
  });

  it('renders, with the defaults, a job that runs the executor image the way kaniko documents', async () => {
    const jobs = renderComponent(await readComponent(templatePath));
    expect(Object.keys(jobs)).toEqual(['kiln-build']);
    const job = jobs['kiln-build'];
    expect(job?.stage).toBe('build');
    expect(job?.image).toEqual({ name: 'ghcr.io/kiln-build/kiln/executor:debug', entrypoint: [''] });
    expect(job?.script).toEqual(['kiln-gitlab --cache=false --snapshot-mode=auto ']);
    expect(job?.artifacts?.reports?.dotenv).toBe('kiln.env');
    // GitLab refuses job variables that are not strings.
    for (const [name, value] of Object.entries(job?.variables ?? {})) expect(typeof value, name).toBe('string');
    expect(job?.variables?.KILN_DOTENV).toBe(job?.artifacts?.reports?.dotenv);
  });

  it('keeps free-form inputs out of the shell line and expands CI variables in them as the runner does', async () => {
    const jobs = renderComponent(await readComponent(templatePath), {
      'job-name': 'image',
      stage: 'package',
      destinations: 'reg.example/a:1, reg.example/a:$CI_COMMIT_SHORT_SHA',
      'build-args': 'A=1\nB=$(rm -rf /) $HOME',
      cache: true,
      'snapshot-mode': 'redo',
      args: '--target release',
    });
    const job = jobs.image;
    expect(job?.script).toEqual(['kiln-gitlab --cache=true --snapshot-mode=redo --target release']);
    const env = jobEnvironment(job ?? { script: [] }, { CI_COMMIT_SHORT_SHA: 'abc123', HOME: '/root' });
    expect(env.KILN_DESTINATIONS).toBe('reg.example/a:1, reg.example/a:abc123');
    expect(env.KILN_BUILD_ARGS).toBe('A=1\nB=$(rm -rf /) /root');
  });

  it('rejects inputs GitLab would reject', async () => {
    const component = await readComponent(templatePath);
    expect(() => renderComponent(component, { cache: 'yes' })).toThrow(ComponentError);
    expect(() => renderComponent(component, { 'snapshot-mode': 'fast' })).toThrow(/not an option/);
    expect(() => renderComponent(component, { destination: 'x' })).toThrow(/unknown input/);
  });

  it('the checker itself catches an undeclared input and a mistyped default', () => {
    const undeclared = parseComponent('spec:\n  inputs:\n    a: {default: x}\n---\njob:\n  script:\n    - echo $[[ inputs.b ]]\n');
    expect(() => renderComponent(undeclared)).toThrow(/inputs\.b/);
    expect(() => parseComponent('spec:\n  inputs:\n    a: {type: boolean, default: "no"}\n---\njob: {script: [x]}\n')).toThrow(/not a boolean/);
  });
});
