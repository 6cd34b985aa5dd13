// The only place that maps a provider type to its behaviour.
import type { ProviderType } from '../config/schema.js';
import { anthropicTable } from './anthropic.js';
import { geminiTable } from './gemini.js';
import { openaiTable } from './openai.js';
import type { ProviderTable } from './table.js';

export const providerTables: Readonly<Record<ProviderType, ProviderTable>> = Object.freeze({
  openai: openaiTable,
  anthropic: anthropicTable,
  gemini: geminiTable,
});

/** Format of errors for requests that matched no route: OpenAI's, the shape most clients parse. */
export const defaultErrorTable: ProviderTable = openaiTable;
