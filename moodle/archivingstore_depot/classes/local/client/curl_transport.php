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
 * transport on PHP's curl extension alone, for use outside Moodle (the standalone tests, a script).
 * Inside Moodle the plugin uses moodle_curl_transport, so that the site's proxy and HTTP security
 * settings apply.
 *
 * @package    archivingstore_depot
 * @copyright  2026 depot contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class curl_transport implements transport {
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
     * Sends one request with curl_exec.
     *
     * @param string $method GET or POST.
     * @param string $url Absolute URL.
     * @param string[] $headers Request headers.
     * @param string|array|null $body Raw body or multipart fields.
     * @param resource|null $sink Stream the body goes to.
     * @return response
     */
    public function send(string $method, string $url, array $headers, $body = null, $sink = null): response {
        $handle = curl_init($url);
        $received = [];
        curl_setopt_array($handle, [
            CURLOPT_CUSTOMREQUEST => $method,
            CURLOPT_HTTPHEADER => $headers,
            CURLOPT_FOLLOWLOCATION => false,
            CURLOPT_PROTOCOLS => CURLPROTO_HTTP | CURLPROTO_HTTPS,
            CURLOPT_CONNECTTIMEOUT => $this->connecttimeout,
            CURLOPT_TIMEOUT => $this->timeout,
            CURLOPT_SSL_VERIFYPEER => $this->verifytls,
            CURLOPT_SSL_VERIFYHOST => $this->verifytls ? 2 : 0,
            CURLOPT_HEADERFUNCTION => function ($ch, string $line) use (&$received): int {
                if (str_starts_with($line, 'HTTP/')) {
                    $received = []; // A new answer (after 100 Continue): keep only its headers.
                } else if (str_contains($line, ':')) {
                    [$name, $value] = explode(':', $line, 2);
                    $received[strtolower(trim($name))] = trim($value);
                }
                return strlen($line);
            },
        ]);
        if ($body !== null) {
            curl_setopt($handle, CURLOPT_POSTFIELDS, $body);
        }
        if ($sink !== null) {
            curl_setopt($handle, CURLOPT_FILE, $sink);
        } else {
            curl_setopt($handle, CURLOPT_RETURNTRANSFER, true);
        }
        $result = curl_exec($handle);
        $status = (int) curl_getinfo($handle, CURLINFO_RESPONSE_CODE);
        $error = curl_errno($handle) ? curl_error($handle) : '';
        curl_close($handle);
        return new response($error === '' ? $status : 0, $received, is_string($result) ? $result : '', $error);
    }
}
