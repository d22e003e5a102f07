export {
  PreviewService,
  PREVIEW_AUTH_PATH,
  PREVIEW_COOKIE,
  previewUrl,
  readCookie,
} from './service.ts';
export type { PreviewCaller, PreviewServiceDeps } from './service.ts';
