/** Zero-shot evaluation (lm-evaluation-harness semantics): the entry points the CLI uses. */
export { runZeroshot, PARTIAL_FILE, RESULTS_FILE, type ZeroshotOptions, type ZeroshotResults, type TaskMetrics } from './run.js';
export { formatZeroshotTable } from './table.js';
export { DEFAULT_TASKS, canonicalTaskName, loadBuiltinTask, loadTaskFile, type ZeroshotTask, type ZeroshotDoc, type MetricName, type OnError } from './tasks.js';
export { encodePair, encodePairs, encodeDocPairs, type EncodeOptions } from './requests.js';
export { scoreDoc, choiceLength, meanStderr } from './metrics.js';
