/**
 * Control catalogues, summarised in our own words with the standards' identifiers. The
 * standards are cited, not copied; read the requirement itself in the publication:
 *
 *   nist-800-171    NIST SP 800-171 Rev. 2, "Protecting Controlled Unclassified Information in
 *                   Nonfederal Systems and Organizations" (2020), chapter 3 requirements.
 *   hipaa-security  HIPAA Security Rule, 45 CFR Part 164 Subpart C (§§ 164.308–164.312).
 *   iso27001        ISO/IEC 27001:2022, Annex A (the controls of ISO/IEC 27002:2022).
 *
 * Only the controls that Gatehouse holds evidence for, or that an assessor would expect a
 * data-sharing gateway to support, are listed; a control not listed here is outside what
 * this report can speak to. Each control names the evidence kinds (evidence.ts) it rests on.
 */
import type { EvidenceKind } from './evidence.ts';

export interface Control {
  readonly id: string;
  readonly title: string;
  /** What the control asks, in our words. */
  readonly summary: string;
  readonly evidence: readonly EvidenceKind[];
}

export interface Framework {
  readonly id: string;
  readonly name: string;
  readonly citation: string;
  readonly controls: readonly Control[];
}

const c = (id: string, title: string, summary: string, evidence: EvidenceKind[]): Control => ({ id, title, summary, evidence });

export const FRAMEWORKS: Readonly<Record<string, Framework>> = {
  'nist-800-171': {
    id: 'nist-800-171', name: 'NIST SP 800-171 Rev. 2',
    citation: 'NIST Special Publication 800-171 Revision 2, Protecting Controlled Unclassified Information in Nonfederal Systems and Organizations, February 2020, chapter 3.',
    controls: [
      c('3.1.1', 'Authorised access only', 'Only known users, processes acting for them and devices get into the system.', ['access-control', 'audit-log']),
      c('3.1.2', 'Permitted transactions', 'Each user can run only the kinds of operations their role allows.', ['access-control', 'least-privilege']),
      c('3.1.3', 'Flow of controlled information', 'Where controlled information may flow is decided by approved rules.', ['privacy-protection', 'agreements']),
      c('3.1.5', 'Least privilege', 'Users get the smallest access their duties need, privileged functions included.', ['least-privilege', 'access-review']),
      c('3.2.2', 'Role training', 'People are trained for the security duties of their role before they act on them.', ['training', 'acknowledgements']),
      c('3.3.1', 'Audit records', 'The system records enough about events to monitor, analyse and investigate them, and keeps the records.', ['audit-log']),
      c('3.3.2', 'Traceability to users', 'Actions can be traced back to the individual user who took them.', ['audit-log']),
      c('3.3.8', 'Protection of audit information', 'Audit records and audit tools are protected from unauthorised access, change and deletion.', ['log-integrity']),
      c('3.5.3', 'Multifactor authentication', 'Access to privileged accounts, and network access to any account, needs more than one factor.', ['mfa']),
      c('3.8.3', 'Sanitisation before disposal', 'Media holding controlled information are sanitised or destroyed before they go.', ['destruction']),
      c('3.12.2', 'Plans of action', 'Deficiencies found are tracked with plans to correct them.', ['findings']),
      c('3.13.16', 'Confidentiality at rest', 'Controlled information is kept confidential while stored.', ['encryption-at-rest']),
      c('3.14.6', 'Monitoring for attacks', 'The system, and its traffic, is watched for signs of attack and misuse.', ['anomaly-alerts', 'audit-log']),
    ],
  },
  'hipaa-security': {
    id: 'hipaa-security', name: 'HIPAA Security Rule',
    citation: 'U.S. Department of Health and Human Services, HIPAA Security Rule, 45 CFR Part 164 Subpart C, §§ 164.308, 164.310, 164.312.',
    controls: [
      c('164.308(a)(1)(ii)(D)', 'Information system activity review', 'Records of system activity, such as access reports, are reviewed regularly.', ['audit-log', 'access-review', 'anomaly-alerts']),
      c('164.308(a)(3)(ii)(B)', 'Workforce clearance', 'Staff get access to electronic health information only as their role justifies.', ['least-privilege', 'access-review']),
      c('164.308(a)(4)(ii)(B)', 'Access authorisation', 'Access is granted through a defined authorisation process.', ['access-control', 'access-review']),
      c('164.308(a)(5)(i)', 'Security awareness and training', 'The workforce is trained in security, and the training is kept current.', ['training', 'acknowledgements']),
      c('164.308(a)(6)(ii)', 'Incident response and reporting', 'Security incidents are identified, responded to, mitigated and documented.', ['findings', 'anomaly-alerts']),
      c('164.308(b)(1)', 'Business associate contracts', 'Partners handling health information do so under written assurances.', ['agreements']),
      c('164.310(d)(2)(i)', 'Disposal', 'Health information, and the media holding it, is disposed of so it cannot be recovered.', ['destruction']),
      c('164.312(a)(1)', 'Access control', 'Technical measures let only authorised persons or software reach health information.', ['access-control', 'least-privilege']),
      c('164.312(a)(2)(iv)', 'Encryption and decryption', 'Stored health information is encrypted where reasonable and appropriate.', ['encryption-at-rest']),
      c('164.312(b)', 'Audit controls', 'Activity in systems that hold health information is recorded and can be examined.', ['audit-log']),
      c('164.312(c)(1)', 'Integrity', 'Health information is protected from improper change or destruction.', ['log-integrity']),
      c('164.312(d)', 'Person or entity authentication', 'Whoever seeks access is verified to be who they claim to be.', ['mfa']),
    ],
  },
  iso27001: {
    id: 'iso27001', name: 'ISO/IEC 27001:2022 Annex A',
    citation: 'ISO/IEC 27001:2022, Information security, cybersecurity and privacy protection — Information security management systems — Requirements, Annex A.',
    controls: [
      c('A.5.12', 'Classification of information', 'Information is classified by its protection needs.', ['classification']),
      c('A.5.15', 'Access control', 'Rules for physical and logical access are set and enforced from business needs.', ['access-control']),
      c('A.5.18', 'Access rights', 'Access rights are granted, reviewed, changed and removed under a defined process.', ['access-review']),
      c('A.5.20', 'Security in supplier agreements', 'Security requirements are agreed with each supplier.', ['agreements']),
      c('A.5.26', 'Response to incidents', 'Incidents are responded to by documented procedures.', ['findings']),
      c('A.5.34', 'Privacy and protection of personal data', 'Personal data is protected as laws, regulations and contracts require.', ['privacy-protection', 'erasure']),
      c('A.6.3', 'Awareness, education and training', 'Staff and relevant parties are trained in security and their policies.', ['training', 'acknowledgements']),
      c('A.8.3', 'Information access restriction', 'Access to information is restricted under the access control policy.', ['least-privilege']),
      c('A.8.5', 'Secure authentication', 'Authentication is strong enough for the information it protects.', ['mfa']),
      c('A.8.10', 'Information deletion', 'Information no longer needed is deleted.', ['destruction', 'erasure']),
      c('A.8.15', 'Logging', 'Activity logs are produced, stored, protected and analysed.', ['audit-log', 'log-integrity']),
      c('A.8.16', 'Monitoring activities', 'Networks, systems and applications are monitored for anomalous behaviour.', ['anomaly-alerts']),
      c('A.8.24', 'Use of cryptography', 'Cryptography, including key management, is used under defined rules.', ['encryption-at-rest']),
    ],
  },
};

export const FRAMEWORK_IDS = Object.keys(FRAMEWORKS);
