/**
 * The coordinator's web dashboard and Prometheus endpoint.
 *
 *   const settings = dashboardSettingsFromFlags(values);          // --dashboard-port/-host/-token, --no-dashboard
 *   const dashboard = settings && (await startDashboard(coordinator, settings, log));
 *   console.log(`dashboard ${dashboard.url}`);
 *
 * model/ (what is shown, from the coordinator's state and its registry's events), metrics/ (the same
 * figures for Prometheus), access/ (token, who may look and who may act), server/ (HTTP routes, the
 * live websocket feed, page assets, downloads), page/ (the browser side: TypeScript bundled by
 * esbuild, charts by uPlot). See docs/readme-parts/dashboard.md.
 */
export { dashboardFlagOptions, dashboardSettingsFromFlags, DASHBOARD_FLAGS_HELP, DEFAULT_DASHBOARD_PORT, type DashboardSettings } from './dashboard-settings.js';
export { startDashboard, type Dashboard } from './start-dashboard.js';
export type { DashboardSource } from './model/dashboard-source.js';
export { DASHBOARD_TOKEN_ENV } from './access/dashboard-token.js';
