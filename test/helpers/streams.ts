// The streams the conformance suite uses live beside it in src/, so that the package can export the suite.
export * from '../../src/conformance/streams';
