import { filesystemHarness } from '../helpers/filesystem-harness';
import { describeConformance } from './suite';

describe('filesystem driver: conformance', () => {
  describeConformance(() => filesystemHarness());
});
