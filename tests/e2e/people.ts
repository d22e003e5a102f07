// The people of a browser test: accounts on the server under test, made through the sign-up form
// (each in a browser context of their own) or through the API, and the API called as them.
import type { Browser, BrowserContext, BrowserContextOptions, Page } from 'playwright-core';
import type { ConsoleWatch } from './browser.ts';
import type { RunningServer } from './server.ts';

/** Every test account's password. */
export const password = 'correct horse battery';

/**
 * Calls the server's HTTP API with a bearer token (none when `token` is null); its JSON answer.
 * @throws when the status is not 2xx, quoting the method, path, status and body.
 */
export async function callApi(
  server: RunningServer,
  token: string | null,
  method: string,
  url: string,
  body?: unknown,
): Promise<any> {
  const res = await fetch(`http://127.0.0.1:${server.port}${url}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      'content-type': 'application/json',
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

/** The session a signed-in page of the IDE keeps in localStorage. */
function sessionOf(page: Page): Promise<{ token: string; user: { id: string } }> {
  return page.evaluate(
    () =>
      JSON.parse(localStorage.getItem('vf.session')!) as { token: string; user: { id: string } },
  );
}

/** The access token of the session a signed-in page of the IDE holds. */
export async function tokenOf(page: Page): Promise<string> {
  return (await sessionOf(page)).token;
}

/** Someone with an account on the server under test. */
export class Person {
  constructor(
    readonly server: RunningServer,
    readonly id: string,
    readonly name: string,
    readonly email: string,
    /** Their current access token (a page's is read each time: the IDE refreshes it). */
    readonly token: () => Promise<string>,
  ) {}

  /**
   * Calls the API as this person; the JSON answer.
   * @throws when the status is not 2xx.
   */
  async api(method: string, url: string, body?: unknown): Promise<any> {
    return callApi(this.server, await this.token(), method, url, body);
  }
}

/** A person at a browser: a context of their own with a page signed in to the IDE. */
export class PersonInBrowser extends Person {
  constructor(
    server: RunningServer,
    id: string,
    name: string,
    email: string,
    readonly context: BrowserContext,
    readonly page: Page,
  ) {
    super(server, id, name, email, () => tokenOf(page));
  }
}

/** A new browser context with one page, its console watched under the name `who`. */
export async function openPage(
  browser: Browser,
  watch: ConsoleWatch,
  who: string,
  options: BrowserContextOptions = {},
): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext(options);
  const page = await context.newPage();
  watch.watch(page, who);
  return { context, page };
}

/** Fills the IDE's sign-up form on `page` and waits for the dashboard; that person, signed in. */
export async function signUpThroughUi(
  server: RunningServer,
  page: Page,
  name: string,
  email: string,
): Promise<PersonInBrowser> {
  await page.goto(server.url + '/');
  await page.getByRole('link', { name: 'Create an account' }).click();
  await page.getByLabel('Name').fill(name);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByRole('heading', { name: 'Projects' }).waitFor();
  const { user } = await sessionOf(page);
  return new PersonInBrowser(server, user.id, name, email, page.context(), page);
}

/** Fills the IDE's sign-in form on `page` with an existing account and waits for the dashboard. */
export async function signInThroughUi(
  server: RunningServer,
  page: Page,
  email: string,
): Promise<void> {
  await page.goto(server.url + '/');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Projects' }).waitFor();
}

/**
 * New people who sign up, one after the other, each in a browser context of their own made with
 * `options` (see openPage); they come back in the order given.
 */
export async function signUp<
  const T extends readonly { who: string; name: string; email: string }[],
>(
  server: RunningServer,
  browser: Browser,
  watch: ConsoleWatch,
  options: BrowserContextOptions,
  people: T,
): Promise<{ [K in keyof T]: PersonInBrowser }> {
  const signedUp: PersonInBrowser[] = [];
  for (const { who, name, email } of people) {
    const { page } = await openPage(browser, watch, who, options);
    signedUp.push(await signUpThroughUi(server, page, name, email));
  }
  return signedUp as { [K in keyof T]: PersonInBrowser };
}

/**
 * A new account made through the API (register, then log in), for someone the test needs but
 * who never opens a browser.
 * @throws when registering does not answer 201 or logging in fails.
 */
export async function registerThroughApi(
  server: RunningServer,
  name: string,
  email: string,
): Promise<Person> {
  const registered = await fetch(`http://127.0.0.1:${server.port}/api/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password, name }),
  });
  const text = await registered.text();
  if (registered.status !== 201) throw new Error(`register ${email}: ${registered.status} ${text}`);
  const { user } = JSON.parse(text) as { user: { id: string } };
  const { token } = (await callApi(server, null, 'POST', '/api/auth/login', {
    email,
    password,
  })) as { token: string };
  return new Person(server, user.id, name, email, () => Promise.resolve(token));
}
