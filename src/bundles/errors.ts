/** Bundle errors: one union code (BUNDLE_REJECTED), a detailed code per cause, never key material or contents in a message. */
import { GatehouseError } from '../errors.ts';

export class BundleRejected extends GatehouseError {
  constructor(message: string, detail: string) {
    super('BUNDLE_REJECTED', message, { detail, reasons: [detail], hint: 'ask the sender to export the bundle again; import bundles in sequence order' });
  }
}
