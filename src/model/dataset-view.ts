/**
 * A dataset as one caller may see it: the effective access of src/query/govern/effective-access.ts
 * rendered for `GET /v1/datasets`, the wire front's catalog and the access review. Plain data,
 * so that the catalog and the faces can read it without reaching the kernel.
 */
export interface DatasetView {
  readonly name: string;
  readonly description: string | null;
  readonly classification: string;
  readonly region: string | null;
  readonly purposes: readonly string[];
  readonly privacyUnit: string | null;
  readonly rowFilter: boolean;
  readonly aggregationOnly: { readonly minGroupSize: number } | null;
  readonly rowCap: number;
  readonly columns: readonly {
    readonly name: string; readonly type: string; readonly classification: string; readonly tags: readonly string[];
    readonly masked: string | null; readonly joinOnly: boolean; readonly description: string | null;
  }[];
}
