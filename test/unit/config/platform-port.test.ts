import { fields, load, loadText, loadTextError, removeTempDirs, tempDir } from './helpers';

/** CONTRACT §12: platforms route HTTP to the Procfile's `web` on $PORT, from outside: PORT sets http.port and binds 0.0.0.0 unless http.host is set. */
afterAll(removeTempDirs);

const config = 'drivers:\n  local: { type: filesystem, root: ./archive }\n';

describe('PORT', () => {
  test('without PORT: http.port and http.host as configured (defaults 3000, 127.0.0.1)', () => {
    expect(loadText(config).config.http).toMatchObject({ port: 3000, host: '127.0.0.1' });
  });

  test('PORT sets http.port and binds every interface', () => {
    expect(loadText(config, { PORT: '8080' }).config.http).toMatchObject({ port: 8080, host: '0.0.0.0' });
    expect(loadText(`${config}http: { port: 3001 }\n`, { PORT: '8080' }).config.http).toMatchObject({ port: 8080, host: '0.0.0.0' });
  });

  test('an http.host in the config is kept', () => {
    expect(loadText(`${config}http: { host: 10.1.2.3 }\n`, { PORT: '8080' }).config.http).toMatchObject({ port: 8080, host: '10.1.2.3' });
  });

  test('the embedded default takes PORT too', () => {
    expect(load({ PORT: '5000', DEPOT_DATA: tempDir() }, tempDir()).config.http).toMatchObject({ port: 5000, host: '0.0.0.0' });
  });

  test.each(['http', '-1', '65536', '80.5'])('PORT=%s is a configuration error naming PORT', (port) => {
    expect(fields(loadTextError(config, { PORT: port }).issues)).toEqual(['PORT']);
  });
});
