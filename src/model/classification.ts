/** The four classification levels, least to most sensitive; every column, dataset and finding carries one. */
export const CLASSIFICATIONS = ['public', 'internal', 'confidential', 'regulated'] as const;
export type Classification = (typeof CLASSIFICATIONS)[number];
