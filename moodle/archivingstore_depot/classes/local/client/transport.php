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
 * How depot_client sends an HTTP request: Moodle's \curl wrapper inside Moodle
 * (moodle_curl_transport), PHP's curl extension outside it (curl_transport).
 *
 * @package    archivingstore_depot
 * @copyright  2026 depot contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
interface transport {
    /**
     * Sends one request and waits for the whole answer.
     *
     * @param string $method GET or POST.
     * @param string $url Absolute URL.
     * @param string[] $headers Request headers as "Name: value" lines.
     * @param string|array|null $body Nothing, a raw body (string), or multipart/form-data fields in their
     *     order: string values and \CURLFile parts (read from disk while sent, never held in memory).
     * @param resource|null $sink When given, the response body is written to this stream instead of returned.
     * @return response The answer; status 0 when no HTTP answer came (connection refused, timeout, blocked).
     */
    public function send(string $method, string $url, array $headers, $body = null, $sink = null): response;
}
