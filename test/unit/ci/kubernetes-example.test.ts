import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const root = path.resolve(import.meta.dirname, '../../..');

interface JobManifest {
  kind: string;
  spec: {
    template: {
      spec: {
        restartPolicy: string;
        containers: { image: string; args: string[]; volumeMounts: { name: string; mountPath: string; subPath?: string }[] }[];
        volumes: { name: string; secret?: { secretName: string; items: { key: string; path: string }[] } }[];
      };
    };
  };
}

describe('examples/kubernetes/kiln-job.yaml', () => {
  it('runs the executor image with its registry Secret where the image looks for the Docker config', async () => {
    const job = parse(await readFile(path.join(root, 'examples/kubernetes/kiln-job.yaml'), 'utf8')) as JobManifest;
    const dockerfile = await readFile(path.join(root, 'images/executor/Dockerfile'), 'utf8');
    const dockerConfig = /DOCKER_CONFIG=(\S+)/.exec(dockerfile)?.[1];
    expect(dockerConfig).toBe('/kiln/.docker/');

    expect(job.kind).toBe('Job');
    const pod = job.spec.template.spec;
    expect(pod.restartPolicy).toBe('Never');
    const [container] = pod.containers;
    expect(container?.image).toMatch(/executor:latest$/);
    expect(container?.args).toEqual(expect.arrayContaining([expect.stringMatching(/^--context=git:\/\//), expect.stringMatching(/^--destination=/)]));
    const mount = container?.volumeMounts.find((m) => m.mountPath === `${dockerConfig}config.json`);
    expect(mount?.subPath).toBe('.dockerconfigjson');
    const volume = pod.volumes.find((v) => v.name === mount?.name);
    expect(volume?.secret?.items).toEqual([{ key: '.dockerconfigjson', path: '.dockerconfigjson' }]);
  });
});
