export {
  ActivityService,
  activitySources,
  defaultActivityLimit,
  maxActivityLimit,
} from './service.ts';
export type { ActivityEntry, ActivityPage, ActivitySource, NewActivity } from './service.ts';
