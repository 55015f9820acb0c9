/** Chart colours; the same values as the CSS variables in dashboard.css (a canvas cannot read those). */
export const COLORS = {
  muted: '#8b95a7',
  grid: 'rgba(139, 149, 167, 0.16)',
  blue: '#5aa9e6',
  blueFill: 'rgba(90, 169, 230, 0.28)',
  green: '#7bd88f',
  greenFaint: 'rgba(123, 216, 143, 0.35)',
  greenFill: 'rgba(123, 216, 143, 0.14)',
  orange: '#f5a65b',
  orangeFaint: 'rgba(245, 166, 91, 0.35)',
  orangeFill: 'rgba(245, 166, 91, 0.3)',
  purple: '#b48ead',
  purpleFill: 'rgba(180, 142, 173, 0.35)',
} as const;
