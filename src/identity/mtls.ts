/**
 * The credential the server derives from a client certificate that the TLS layer verified
 * (mTLS). It carries a per-process random marker, so no header, CLI argument or other caller
 * can forge the form: only code in this process that imports this constant can produce it.
 */
import { randomBytes } from 'node:crypto';

export const MTLS_CREDENTIAL_PREFIX = `mtls-${randomBytes(16).toString('hex')}:`;
