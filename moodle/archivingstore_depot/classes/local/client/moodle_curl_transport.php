<?php
// This file is part of Moodle - https://moodle.org/
//
// Moodle is free software: you can redistribute it and/or modify
// it under the terms of the GNU General Public License as published by
// the Free Software Foundation, either version 3 of the License, or
// (at your option) any later version.
//
// Moodle is distributed in the hope that it will be useful,
// but WITHOUT ANY WARRANTY; without even the implied warranty of
// MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.  See the
// GNU General Public License for more details.
//
// You should have received a copy of the GNU General Public License
// along with Moodle.  If not, see <https://www.gnu.org/licenses/>.

namespace archivingstore_depot\local\client;

/**
 * transport on Moodle's \curl wrapper (lib/classes/files/curl.php in Moodle 5, lib/filelib.php before;
 * `\curl` is the alias), so that the site's proxy settings and its HTTP security settings
 * (curlsecurityblockedhosts, curlsecurityallowedport) apply to every request to depot.
 *
 * What this relies on, as read in that file:
 *  - post($url, array $params) sends an array as CURLOPT_POSTFIELDS, so \CURLFile values become
 *    multipart file parts streamed from disk by curl, in the array's order;
 *  - download_one($url, null, ['file' => $stream]) writes the body to the stream (CURLOPT_FILE);
 *  - a URL the security helper blocks is never requested: the method returns the helper's
 *    message, $curl->error holds it and get_info() is empty (no http_code);
 *  - CURLOPT_SSL_VERIFYPEER is 0 unless set (resetopt()), so it is set here from the plugin's setting;
 *  - getresponse() holds the last answer's headers under the names as sent.
 *
 * @package    archivingstore_depot
 * @copyright  2026 depot contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class moodle_curl_transport implements transport {
    /**
     * Configures the transport.
     *
     * @param int $timeout Seconds a whole request may take (0: no limit).
     * @param int $connecttimeout Seconds to establish the connection.
     * @param bool $verifytls Verify the server's TLS certificate and name.
     */
    public function __construct(
        /** @var int Seconds a whole request may take. */
        private readonly int $timeout = 60,
        /** @var int Seconds to establish the connection. */
        private readonly int $connecttimeout = 10,
        /** @var bool Verify the server's TLS certificate and name. */
        private readonly bool $verifytls = true
    ) {
    }

    /**
     * Sends one request through a fresh \curl (its state is per request).
     *
     * @param string $method GET or POST.
     * @param string $url Absolute URL.
     * @param string[] $headers Request headers.
     * @param string|array|null $body Raw body or multipart fields.
     * @param resource|null $sink Stream the body goes to.
     * @return response
     */
    public function send(string $method, string $url, array $headers, $body = null, $sink = null): response {
        $curl = new \curl();
        $curl->setheader($headers);
        $options = [
            'CURLOPT_FOLLOWLOCATION' => 0,
            'CURLOPT_TIMEOUT' => $this->timeout,
            'CURLOPT_CONNECTTIMEOUT' => $this->connecttimeout,
            'CURLOPT_SSL_VERIFYPEER' => $this->verifytls ? 1 : 0,
            'CURLOPT_SSL_VERIFYHOST' => $this->verifytls ? 2 : 0,
        ];
        if ($method === 'POST') {
            $result = $curl->post($url, $body ?? '', $options);
        } else if ($sink !== null) {
            $result = $curl->download_one($url, null, $options + ['file' => $sink]);
        } else {
            $result = $curl->get($url, [], $options);
        }
        $info = $curl->get_info();
        $status = (int) ($info['http_code'] ?? 0);
        $error = (string) $curl->error;
        $headers = [];
        foreach ($curl->getresponse() as $name => $value) {
            $headers[strtolower((string) $name)] = is_array($value) ? (string) end($value) : (string) $value;
        }
        $text = ($sink === null && is_string($result) && $error === '') ? $result : '';
        return new response($error === '' ? $status : 0, $headers, $text, $error);
    }
}
