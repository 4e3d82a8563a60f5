// Free and consumer mailbox providers. Sharing one of these domains says
// nothing about belonging to the same organization, so classification treats
// them as external no matter how many teammates use them. The list favours
// precision over recall: a wrongly listed company domain would turn that
// company's own people into outsiders, while a missing provider only falls
// back to the ordinary share rule.

const PROVIDERS = [
  // Google
  "gmail.com",
  "googlemail.com",
  // Microsoft
  "outlook.com",
  "outlook.fr",
  "outlook.de",
  "outlook.es",
  "outlook.it",
  "hotmail.com",
  "hotmail.co.uk",
  "hotmail.fr",
  "hotmail.de",
  "hotmail.it",
  "hotmail.es",
  "hotmail.co.jp",
  "hotmail.com.br",
  "live.com",
  "live.co.uk",
  "live.fr",
  "live.nl",
  "msn.com",
  // Yahoo
  "yahoo.com",
  "yahoo.co.uk",
  "yahoo.fr",
  "yahoo.de",
  "yahoo.it",
  "yahoo.es",
  "yahoo.ca",
  "yahoo.com.au",
  "yahoo.com.br",
  "yahoo.com.mx",
  "yahoo.co.in",
  "yahoo.co.jp",
  "ymail.com",
  "rocketmail.com",
  // Apple
  "icloud.com",
  "me.com",
  "mac.com",
  // AOL
  "aol.com",
  "aim.com",
  // Privacy-focused
  "proton.me",
  "protonmail.com",
  "protonmail.ch",
  "pm.me",
  "tutanota.com",
  "tutanota.de",
  "tutamail.com",
  "tuta.io",
  "tuta.com",
  "posteo.de",
  "mailbox.org",
  "hushmail.com",
  "duck.com",
  // Independent
  "zoho.com",
  "zohomail.com",
  "fastmail.com",
  "fastmail.fm",
  "hey.com",
  "mail.com",
  // German-speaking
  "gmx.com",
  "gmx.de",
  "gmx.net",
  "gmx.at",
  "gmx.ch",
  "web.de",
  "t-online.de",
  "freenet.de",
  // Russian-speaking
  "mail.ru",
  "bk.ru",
  "inbox.ru",
  "list.ru",
  "yandex.ru",
  "yandex.com",
  "ya.ru",
  "rambler.ru",
  // Chinese
  "qq.com",
  "foxmail.com",
  "163.com",
  "126.com",
  "yeah.net",
  "sina.com",
  "sohu.com",
  "aliyun.com",
  // Korean
  "naver.com",
  "daum.net",
  "hanmail.net",
  // French
  "orange.fr",
  "wanadoo.fr",
  "free.fr",
  "sfr.fr",
  "laposte.net",
  // Italian
  "libero.it",
  "virgilio.it",
  "alice.it",
  // Central European
  "seznam.cz",
  "wp.pl",
  "o2.pl",
  "interia.pl",
  // Brazilian
  "uol.com.br",
  "bol.com.br",
  "terra.com.br",
  // Indian
  "rediffmail.com",
  // Consumer ISPs
  "comcast.net",
  "att.net",
  "sbcglobal.net",
  "verizon.net",
  "btinternet.com",
  "bigpond.com",
] as const;

export const PUBLIC_EMAIL_PROVIDERS: ReadonlySet<string> = new Set<string>(PROVIDERS);

/**
 * Exact match only: subdomains of a provider are not mailbox domains, and
 * suffix matching would misfire on lookalikes such as "notgmail.com".
 */
export function isPublicProvider(domain: string): boolean {
  return PUBLIC_EMAIL_PROVIDERS.has(domain.trim().toLowerCase());
}
