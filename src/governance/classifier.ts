/**
 * The classifier: proposes classification levels and tags for a dataset's columns from
 * their names and a sample of their values. It only *proposes*; an administrator confirms
 * or rejects each proposal, and nothing here changes a workspace. Rules are in
 * docs/classification.md.
 *
 * - Name rules match the column name split into lower-case words (`DateOfBirth`,
 *   `date_of_birth` and `date-of-birth` all become `date_of_birth`).
 * - Value rules run on sampled *string* cells, each cut to MAX_VALUE_CHARS first (bounded
 *   work per value), reusing the DLP detectors where one exists (US SSN validity rules,
 *   payment cards with IIN + Luhn, IBAN with MOD 97-10, e-mail, phone, NHS number, SIN).
 *   Numbers, booleans, lists and structs are not pattern-checked: a bare number has no
 *   format to tell an SSN from a quantity (the same choice as the DLP result scanner).
 * - A proposal is made only when the classifier's level is stricter than the declared one
 *   or a tag it found is missing; it never proposes to lower a level or remove a tag.
 * - Evidence is counts, ratios and rule names — never a sampled value.
 */
import type { CellValue } from '../model/result.ts';
import { CLASSIFICATIONS, type Classification, type ColumnDef, type DatasetDef } from '../model/types.ts';
import { caSin } from '../privacy/dlp/detectors/ca-sin.ts';
import { email } from '../privacy/dlp/detectors/email.ts';
import { iban } from '../privacy/dlp/detectors/iban.ts';
import { ipv4 } from '../privacy/dlp/detectors/ipv4.ts';
import { ipv6 } from '../privacy/dlp/detectors/ipv6.ts';
import { paymentCard } from '../privacy/dlp/detectors/payment-card.ts';
import { phone } from '../privacy/dlp/detectors/phone.ts';
import { ukNhsNumber } from '../privacy/dlp/detectors/uk-nhs-number.ts';
import { usSsn } from '../privacy/dlp/detectors/us-ssn.ts';
import { meetsRequirements, textFeatures } from '../privacy/dlp/text-features.ts';
import type { Detector } from '../privacy/dlp/types.ts';

/** Values sampled per column (rows per dataset). */
export const SAMPLE_SIZE = 200;
/** Each sampled string is cut to this many characters before any rule sees it. */
export const MAX_VALUE_CHARS = 512;
/** Share of non-null sampled strings that must match a value rule for it to count. */
export const VALUE_THRESHOLD = 0.6;

export interface Proposal {
  readonly dataset: string;
  /** The column, or null for a proposal about the dataset's own level. */
  readonly column: string | null;
  /** Proposed level: never lower than the declared one. */
  readonly level: Classification;
  /** Tags the classifier found that are not declared yet (add these). */
  readonly tags: readonly string[];
  /** 0..1: how sure the strongest rule is (see docs/classification.md). */
  readonly confidence: number;
  /** Which rules fired, with counts and ratios; never a value. */
  readonly evidence: readonly string[];
  readonly declared: { readonly level: Classification; readonly tags: readonly string[] };
}

export interface ClassifierOptions {
  /** Reference date for date-of-birth plausibility. Default: now. */
  readonly now?: Date;
}

/** How many rows to sample and which columns to read: `SELECT <columns> FROM <dataset> LIMIT <limit>` through the governed path, or a random sample of that size. */
export function samplingPlan(dataset: DatasetDef, rowCount?: number | null): { readonly columns: readonly string[]; readonly limit: number; readonly description: string } {
  const limit = rowCount === undefined || rowCount === null ? SAMPLE_SIZE : Math.max(0, Math.min(SAMPLE_SIZE, Math.floor(rowCount)));
  return {
    columns: dataset.columns.map((c) => c.name),
    limit,
    description: `sample up to ${limit} rows of ${dataset.columns.length} columns; each text value is read up to ${MAX_VALUE_CHARS} characters, and no value is kept in a proposal`,
  };
}

/** Turns an engine result (column names + rows) into the per-column samples `proposeClassifications` takes. */
export function samplesFromRows(columns: readonly string[], rows: readonly (readonly CellValue[])[]): Map<string, CellValue[]> {
  const out = new Map<string, CellValue[]>(columns.map((c) => [c, []]));
  for (const row of rows.slice(0, SAMPLE_SIZE)) {
    columns.forEach((c, i) => out.get(c)!.push(row[i] ?? null));
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Rules

type Category = 'ssn' | 'card' | 'iban' | 'email' | 'phone' | 'dob' | 'name' | 'diagnosis' | 'address' | 'postcode' | 'nhs' | 'sin' | 'ip';

interface Rule {
  readonly category: Category;
  readonly label: string;
  readonly tag: string;
  /** Declared tags that already say the same thing. */
  readonly synonyms: readonly string[];
  readonly level: Classification;
  /** Matches the normalised column name. */
  readonly name: RegExp | null;
  /** Confidence of a name match alone. */
  readonly nameConfidence: number;
  /** One sampled value (already cut) satisfies the rule. */
  readonly value: ((text: string, ctx: ValueContext) => boolean) | null;
  /** Whether a value match may propose without a name match (false: values only confirm). */
  readonly valuesAlone: boolean;
  /** Wording of the value rule for evidence. */
  readonly valueRule: string;
}

interface ValueContext { readonly nowMs: number }

function detect(d: Detector): (text: string) => boolean {
  return (text) => meetsRequirements(textFeatures(text), d.requires) && d.matches(text);
}

const W = (words: string): string => `(?:^|_)(?:${words})(?:_|$)`;

/** A date (YYYY-MM-DD, optionally with a time) an age of 0–120 years before `now`. */
function plausibleBirthDate(text: string, ctx: ValueContext): boolean {
  const m = /^\s*(\d{4})-(\d{2})-(\d{2})(?:[T ][\d:.]+(?:Z|[+-]\d{2}:?\d{2})?)?\s*$/.exec(text) ?? /^\s*(\d{1,2})\/(\d{1,2})\/(\d{4})\s*$/.exec(text);
  if (m === null) return false;
  const [y, mo, d] = m[1]!.length === 4 ? [Number(m[1]), Number(m[2]), Number(m[3])] : [Number(m[3]), Number(m[2]), Number(m[1])];
  if (mo < 1 || mo > 12 || d < 1 || d > 31) return false;
  const t = Date.UTC(y, mo - 1, d);
  const age = (ctx.nowMs - t) / (365.25 * 86_400_000);
  return age >= 0 && age <= 120;
}

/** Year of a date string already accepted by plausibleBirthDate. */
function yearOf(text: string): number {
  const iso = /^\s*(\d{4})-/.exec(text);
  if (iso !== null) return Number(iso[1]);
  return Number(/(\d{4})\s*$/.exec(text)![1]);
}

// ICD-10 (WHO / ICD-10-CM) codes: letter, two characters, optional dot and up to 4 more.
const ICD10 = /^\s*[A-TV-Z][0-9][0-9A-Z](?:\.?[0-9A-Z]{1,4})?\s*$/;
const US_ZIP = /^\s*\d{5}(?:-\d{4})?\s*$/;
const UK_POSTCODE = /^\s*[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}\s*$/i;
const STREET = /^\s*\d{1,6}[A-Za-z]?\s+\S.*\b(?:st|street|ave|avenue|rd|road|lane|ln|drive|dr|blvd|boulevard|way|court|ct|place|pl|terrace|close|crescent|square)\b\.?/i;

export const RULES: readonly Rule[] = [
  { category: 'ssn', label: 'US Social Security number', tag: 'pii.ssn', synonyms: [], level: 'regulated', name: new RegExp(W('ssn|social_security(?:_number|_no|_num)?')), nameConfidence: 0.7, value: detect(usSsn), valuesAlone: true, valueRule: 'are valid US SSNs (area 001–899 except 666, group ≠ 00, serial ≠ 0000)' },
  { category: 'card', label: 'payment card number', tag: 'pii.card', synonyms: ['pci.pan', 'pii.pan', 'pii.card_number'], level: 'regulated', name: new RegExp(W('(?:credit|debit|payment)_card(?:_number|_no|_num)?|card_(?:number|no|num)|cc_?(?:number|no|num)|ccn|pan|primary_account_number')), nameConfidence: 0.6, value: detect(paymentCard), valuesAlone: true, valueRule: 'are payment card numbers (scheme prefix, length and Luhn check digit)' },
  { category: 'iban', label: 'IBAN', tag: 'pii.iban', synonyms: ['pii.bank_account'], level: 'regulated', name: new RegExp(W('iban')), nameConfidence: 0.7, value: detect(iban), valuesAlone: true, valueRule: 'are IBANs (registered country length and MOD 97-10 check)' },
  { category: 'nhs', label: 'NHS number', tag: 'pii.nhs_number', synonyms: ['pii.nhs'], level: 'regulated', name: new RegExp(W('nhs(?:_number|_no|_num)?|chi(?:_number)?')), nameConfidence: 0.7, value: detect(ukNhsNumber), valuesAlone: false, valueRule: 'are NHS numbers (modulus 11 check digit)' },
  { category: 'sin', label: 'Canadian Social Insurance Number', tag: 'pii.sin', synonyms: [], level: 'regulated', name: new RegExp(W('sin|social_insurance(?:_number|_no)?')), nameConfidence: 0.5, value: detect(caSin), valuesAlone: false, valueRule: 'are Canadian SINs (Luhn check)' },
  { category: 'diagnosis', label: 'diagnosis (health data)', tag: 'phi.diagnosis', synonyms: ['phi'], level: 'regulated', name: new RegExp(W('diagnos[ie]s|dx|icd(?:_?10|_?9)?(?:_cm)?(?:_code)?|diagnosis_code|condition_code')), nameConfidence: 0.7, value: (t) => ICD10.test(t), valuesAlone: false, valueRule: 'have the shape of ICD-10 codes' },
  { category: 'email', label: 'e-mail address', tag: 'pii.email', synonyms: [], level: 'confidential', name: new RegExp(W('e_?mail(?:_address|_addr)?')), nameConfidence: 0.7, value: detect(email), valuesAlone: true, valueRule: 'contain e-mail addresses' },
  { category: 'phone', label: 'telephone number', tag: 'pii.phone', synonyms: ['pii.mobile', 'pii.telephone'], level: 'confidential', name: new RegExp(W('phone(?:_number|_no)?|telephone|tel|mobile(?:_number)?|cell_?phone|fax|msisdn')), nameConfidence: 0.6, value: detect(phone), valuesAlone: true, valueRule: 'contain telephone numbers (NANP or E.164)' },
  { category: 'dob', label: 'date of birth', tag: 'pii.dob', synonyms: ['pii.date_of_birth', 'pii.birth_date'], level: 'confidential', name: new RegExp(W('dob|birth_?date|date_of_birth|birthday|born(?:_on)?|birth_day')), nameConfidence: 0.7, value: plausibleBirthDate, valuesAlone: true, valueRule: 'are dates 0–120 years in the past' },
  { category: 'name', label: "person's name", tag: 'pii.name', synonyms: ['pii.full_name', 'pii.first_name', 'pii.last_name'], level: 'confidential', name: new RegExp(W('(?:first|last|given|family|middle|maiden|full|sur|fore|christian|legal|display)_?name|surname|forename|(?:patient|customer|person|employee|member|contact|client|holder|cardholder|account_holder|subscriber|guardian|applicant)_name')), nameConfidence: 0.6, value: (t) => looksLikePersonName(t), valuesAlone: true, valueRule: 'look like personal names (capitalised words, at least one a common given name or surname)' },
  { category: 'address', label: 'postal address', tag: 'pii.address', synonyms: ['pii.street_address', 'pii.location'], level: 'confidential', name: /(?:^|_)(?:(?:home|street|postal|mailing|billing|shipping|residential)_)?(?:address(?:_line)?(?:_?\d)?|street|addr)(?:_|$)/, nameConfidence: 0.5, value: (t) => STREET.test(t), valuesAlone: false, valueRule: 'look like street addresses (number, street name, street type)' },
  { category: 'postcode', label: 'postcode / ZIP code', tag: 'pii.location', synonyms: ['pii.zip', 'pii.postcode', 'pii.postal_code'], level: 'confidential', name: new RegExp(W('post_?code|postal_code|zip(?:_?code)?|zip5|zipcode')), nameConfidence: 0.6, value: (t) => US_ZIP.test(t) || UK_POSTCODE.test(t), valuesAlone: false, valueRule: 'are US ZIP codes or UK postcodes' },
  { category: 'ip', label: 'IP address', tag: 'pii.ip_address', synonyms: ['pii.ip'], level: 'confidential', name: new RegExp(W('ip|ip_?addr(?:ess)?|ipv4|ipv6|client_ip|remote_addr')), nameConfidence: 0.6, value: (t) => detect(ipv4)(t) || detect(ipv6)(t), valuesAlone: true, valueRule: 'contain IP addresses' },
];

/** Words that make an `address` column something other than a postal address. */
const NOT_POSTAL = /(?:^|_)(?:e_?mail|ip|mac|web|url|wallet|memory|bitcoin|eth)(?:_|$)/;

/** `DateOfBirth`, `date-of-birth`, `Date Of Birth` → `date_of_birth`. */
export function normaliseColumnName(name: string): string {
  return name
    .slice(0, 128)
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1_$2')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '');
}

// ---------------------------------------------------------------------------------------
// Person names

/** Common given names and surnames (English-speaking, European and other frequent ones), lower case. */
const GIVEN = new Set(('james john robert michael william david richard joseph thomas charles christopher daniel matthew anthony mark donald steven paul andrew joshua kenneth kevin brian george timothy ronald edward jason jeffrey ryan jacob gary nicholas eric jonathan stephen larry justin scott brandon benjamin samuel gregory alexander frank patrick raymond jack dennis jerry tyler aaron jose adam nathan henry douglas peter oliver harry noah leo arthur muhammad mohammed ahmed ali omar hassan wei li jun hiroshi yuki raj amit priya carlos juan luis miguel pedro jorge diego pablo javier antonio francesco giuseppe marco luca hans klaus jurgen pierre jean louis francois sven lars erik '
  + 'mary patricia jennifer linda elizabeth barbara susan jessica sarah karen lisa nancy betty margaret sandra ashley kimberly emily donna michelle carol amanda dorothy melissa deborah stephanie rebecca sharon laura cynthia kathleen amy angela shirley anna brenda pamela emma nicole helen samantha katherine christine debra rachel carolyn janet catherine maria heather diane ruth julie olivia joyce virginia victoria kelly lauren christina joan evelyn judith megan andrea cheryl hannah jacqueline martha gloria teresa ann sara madison frances kathryn janice jean abigail alice julia judy sophia grace denise amber doris marilyn danielle beverly isabella theresa diana natalie brittany charlotte marie kayla alexis lori amelia isla ava mia ella chloe lucy fatima aisha mei yan sofia lucia elena ana ingrid astrid claire sophie jane kate tom ben sam max lily zoe ruby ethan liam lucas mason logan elijah aiden ian neil alan colin graham simon philip tony martin nora rose eva leah maya zara amir yusuf ivan dmitri olga anya kenji akira hana sana ravi anil sunita deepa kwame kofi ama chinedu ngozi').split(' '));
const SURNAMES = new Set(('smith johnson williams brown jones garcia miller davis rodriguez martinez hernandez lopez gonzalez wilson anderson thomas taylor moore jackson martin lee perez thompson white harris sanchez clark ramirez lewis robinson walker young allen king wright scott torres nguyen hill flores green adams nelson baker hall rivera campbell mitchell carter roberts gomez phillips evans turner diaz parker cruz edwards collins reyes stewart morris morales murphy cook rogers gutierrez ortiz morgan cooper peterson bailey reed kelly howard ramos kim cox ward richardson watson brooks chavez wood james bennett gray mendoza ruiz hughes price alvarez castillo sanders patel myers long ross foster jimenez '
  + 'singh khan chen wang zhang liu yang huang zhao wu zhou xu sun ma zhu hu guo lin he gao luo tanaka suzuki sato takahashi watanabe mueller muller schmidt schneider fischer weber meyer wagner becker schulz hoffmann dubois durand lefebvre moreau laurent rossi russo ferrari esposito bianchi romano colombo silva santos oliveira souza costa pereira almeida jansen devries bakker visser andersson johansson karlsson nilsson larsen hansen nielsen jensen novak kowalski nowak wojcik ivanov smirnov obrien murray walsh byrne ryan doyle mccarthy').split(' '));

// A capitalised word, with inner capitals after an apostrophe or Mc/Mac (O'Brien, McDonald), optionally hyphenated; or an initial.
const NAME_PART = "\\p{Lu}\\p{Ll}*(?:['’]?\\p{Lu}\\p{Ll}+)*";
const NAME_WORD = new RegExp(`^(?:${NAME_PART}(?:-${NAME_PART})?|\\p{Lu}\\.?)$`, 'u');
const PARTICLES = new Set(['van', 'von', 'de', 'der', 'den', 'da', 'di', 'del', 'la', 'le', 'du', 'bin', 'al', 'st', 'mc', "o'"]);

/**
 * "Jane Doe", "Doe, Jane", "Mary-Ann O'Brien", "José García" (2–4 capitalised words, or a
 * single word for given-/surname columns), at least one of them a known given name or
 * surname. Capitalisation alone is not enough ("New York", "Cardiology Ward").
 */
export function looksLikePersonName(text: string): boolean {
  if (text.length > 80) return false;
  const words = text.trim().replace(/\s*,\s*/, ' ').split(/\s+/);
  if (words.length < 1 || words.length > 4) return false;
  let given = 0, known = 0;
  for (const w of words) {
    if (PARTICLES.has(w.toLowerCase())) continue;
    if (!NAME_WORD.test(w)) return false;
    const parts = w.toLowerCase().normalize('NFD').replace(/[\u0300-\u036f'’.]/g, '').split('-');
    if (parts.some((p) => GIVEN.has(p))) { given++; known++; } else if (parts.some((p) => SURNAMES.has(p))) known++;
  }
  // One word: any known name. Several: a known given name, or two known words — a surname
  // that is also a common noun ("Cardiology Ward") is not enough.
  return words.length === 1 ? known > 0 : given > 0 || known >= 2;
}

// ---------------------------------------------------------------------------------------
// Proposals

const RANK: Readonly<Record<Classification, number>> = Object.fromEntries(CLASSIFICATIONS.map((c, i) => [c, i])) as Record<Classification, number>;

function stricter(a: Classification, b: Classification): Classification {
  return RANK[a] >= RANK[b] ? a : b;
}

function pct(n: number, d: number): string {
  return `${Math.round((100 * n) / d)}%`;
}

interface Hit { rule: Rule; confidence: number; evidence: string[] }

/** Confidence of a value rule: the match ratio, discounted for small samples (full weight from 30 values). */
function valueConfidence(matches: number, total: number): number {
  return (matches / total) * Math.min(1, Math.sqrt(total / 30)) * 0.9;
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

function classifyColumn(column: ColumnDef, samples: readonly CellValue[] | undefined, ctx: ValueContext): Hit[] {
  const normalised = normaliseColumnName(column.name);
  const texts: string[] = [];
  let nulls = 0, nonText = 0;
  for (const v of (samples ?? []).slice(0, SAMPLE_SIZE)) {
    if (v === null || v === undefined) nulls++;
    else if (typeof v === 'string') { const t = v.length > MAX_VALUE_CHARS ? v.slice(0, MAX_VALUE_CHARS) : v; if (t.trim() === '') nulls++; else texts.push(t); }
    else nonText++;
  }
  const hits: Hit[] = [];
  for (const rule of RULES) {
    const nameHit = rule.name !== null && rule.name.test(normalised) && !(rule.category === 'address' && NOT_POSTAL.test(normalised));
    let matches = 0;
    if (rule.value !== null) for (const t of texts) if (rule.value(t, ctx)) matches++;
    const ratio = texts.length > 0 ? matches / texts.length : 0;
    let valueHit = texts.length > 0 && ratio >= VALUE_THRESHOLD && matches >= Math.min(3, texts.length);
    const evidence: string[] = [];
    if (valueHit && rule.category === 'dob' && !nameHit) {
      // Any date column holds dates in the past; birth dates also spread over decades.
      const years = texts.filter((t) => plausibleBirthDate(t, ctx)).map(yearOf);
      const span = Math.max(...years) - Math.min(...years);
      if (span < 15 || matches < 10) valueHit = false;
      else evidence.push(`sampled dates span ${span} years of birth`);
    }
    if (!nameHit && !(valueHit && rule.valuesAlone)) continue;
    let confidence = 0;
    if (nameHit) {
      confidence = rule.nameConfidence;
      evidence.unshift(`column name matches the ${rule.label} naming rule`);
    }
    if (valueHit) {
      const vc = valueConfidence(matches, texts.length);
      confidence = nameHit ? 1 - (1 - confidence) * (1 - vc) : vc;
      evidence.push(`${matches} of ${texts.length} sampled non-empty text values (${pct(matches, texts.length)}) ${rule.valueRule}`);
    } else if (nameHit && texts.length >= 10 && rule.value !== null && matches === 0) {
      // The name says one thing and no sampled value agrees: keep the proposal, lower confidence.
      confidence *= 0.6;
      evidence.push(`none of ${texts.length} sampled non-empty text values ${rule.valueRule}`);
    } else if (nameHit && matches > 0 && rule.value !== null) {
      evidence.push(`${matches} of ${texts.length} sampled non-empty text values (${pct(matches, texts.length)}) ${rule.valueRule}`);
    }
    if (nulls > 0 || nonText > 0) evidence.push(`${nulls} empty and ${nonText} non-text sampled values not pattern-checked`);
    hits.push({ rule, confidence: round2(Math.min(1, Math.max(0, confidence))), evidence });
  }
  // Several categories on one column (e.g. a free-text notes column with e-mails and
  // phone numbers) all stand; the strongest comes first.
  return hits.sort((a, b) => b.confidence - a.confidence || RANK[b.rule.level] - RANK[a.rule.level]);
}

function declaredHas(declared: readonly string[], rule: Rule): boolean {
  const d = declared.map((t) => t.toLowerCase());
  return d.includes(rule.tag) || rule.synonyms.some((s) => d.includes(s));
}

/**
 * Proposals for `dataset`'s columns from `samples` (column name → sampled values; missing
 * columns are judged by name only), plus one for the dataset itself (column: null) when a
 * column's proposed level is stricter than the dataset's. Ordered as the columns are.
 */
export function proposeClassifications(dataset: DatasetDef, samples: ReadonlyMap<string, readonly CellValue[]>, options: ClassifierOptions = {}): Proposal[] {
  const ctx: ValueContext = { nowMs: (options.now ?? new Date()).getTime() };
  const out: Proposal[] = [];
  let strictest: Classification = dataset.classification;
  let strictestFrom: string | null = null;
  for (const column of dataset.columns) {
    const hits = classifyColumn(column, samples.get(column.name), ctx);
    if (RANK[column.classification] > RANK[strictest]) { strictest = column.classification; strictestFrom = column.name; }
    if (hits.length === 0) continue;
    let level = column.classification;
    const tags: string[] = [];
    for (const h of hits) {
      level = stricter(level, h.rule.level);
      if (!declaredHas(column.tags, h.rule) && !tags.includes(h.rule.tag)) tags.push(h.rule.tag);
    }
    if (RANK[level] > RANK[strictest]) { strictest = level; strictestFrom = column.name; }
    if (level === column.classification && tags.length === 0) continue;
    const evidence = hits.flatMap((h) => h.evidence.map((e) => `${h.rule.tag}: ${e}`));
    if (RANK[level] > RANK[column.classification]) evidence.push(`declared level "${column.classification}" is lower than "${level}", the level for ${hits.find((h) => h.rule.level === level)!.rule.label} values`);
    out.push({ dataset: dataset.name, column: column.name, level, tags: tags.sort(), confidence: hits[0]!.confidence, evidence, declared: { level: column.classification, tags: [...column.tags] } });
  }
  if (strictestFrom !== null) {
    const colProposal = out.find((p) => p.column === strictestFrom);
    out.push({
      dataset: dataset.name, column: null, level: strictest, tags: [], confidence: colProposal?.confidence ?? 1,
      evidence: [`column "${strictestFrom}" is (or is proposed to be) "${strictest}", stricter than the dataset's declared "${dataset.classification}"; a dataset is at least as strict as its strictest column`],
      declared: { level: dataset.classification, tags: [...dataset.tags] },
    });
  }
  return out;
}
