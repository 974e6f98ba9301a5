// The one package a user installs: the CLI plus everything a config imports.
export * from '@proxyctl/core'
export * from '@proxyctl/plugins'
export { selfSignedCertificate, type SelfSignedOptions, type SelfSignedCertificate } from './self-signed.js'
