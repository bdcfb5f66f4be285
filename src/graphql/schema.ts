import './errors.ts';
import './render-node.ts';
import './render-job.ts';
import './wallet.ts';
import './discount-code.ts';
import './export.ts';
import './node-admin.ts';
import './node-update.ts';
import './snapshot.ts';
import './external.ts';
import { builder } from './builder.ts';

export const FEDERATION_LINK_URL = 'https://specs.apollo.dev/federation/v2.6';

export const schema = builder.toSubGraphSchema({
  linkUrl: FEDERATION_LINK_URL,
  federationDirectives: ['@key', '@shareable', '@external', '@requires', '@provides', '@extends'],
});
