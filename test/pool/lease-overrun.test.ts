// A lease overrun across real processes, on PostgreSQL (the case: test/pool/lease-overrun.ts).
import { describeLeaseOverrun } from './lease-overrun.js';

await describeLeaseOverrun('PostgreSQL');
