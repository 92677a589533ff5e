// The suite lives in src/conformance, so that the package exports it to plugin authors (archive-depot/conformance).
export * from '../../src/conformance/suite';
