/** The AWS KMS fake for benches: started in this process, with the env our plugin needs. */
import { FakeAwsKms } from '../../test/fakes/aws-kms/fake.js';
import { STATIC_AWS_ENV } from '../../test/fakes/aws-kms/harness.js';

export interface AwsFakeRun {
  fake: FakeAwsKms;
  keyArn: string;
  /** Serve flags pointing at the fake. */
  args: string[];
  env: NodeJS.ProcessEnv;
}

export async function startAwsFake(latencyMs = 0): Promise<AwsFakeRun> {
  const fake = new FakeAwsKms();
  fake.latencyMs = latencyMs;
  await fake.listen();
  const key = fake.createKey({ description: 'bench KEK' });
  return {
    fake,
    keyArn: key.arn,
    args: [
      '--provider',
      'aws',
      '--aws-key-id',
      key.arn,
      '--aws-endpoint',
      fake.url,
      '--aws-region',
      fake.region,
    ],
    env: { ...STATIC_AWS_ENV },
  };
}
