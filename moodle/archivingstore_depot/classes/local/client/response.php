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
 * An HTTP answer as a transport received it.
 *
 * @package    archivingstore_depot
 * @copyright  2026 depot contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
final class response {
    /**
     * Records an answer.
     *
     * @param int $status HTTP status; 0 when no answer came.
     * @param array $headers Response headers, names in lower case, each value a string (the last one sent).
     * @param string $body The body, or '' when it went to a sink.
     * @param string $error What went wrong below HTTP (curl's error text, Moodle's "blocked" text), '' when nothing.
     */
    public function __construct(
        /** @var int HTTP status; 0 when no answer came. */
        public readonly int $status,
        /** @var array Response headers, names in lower case. */
        public readonly array $headers,
        /** @var string The body, or '' when it went to a sink. */
        public readonly string $body,
        /** @var string What went wrong below HTTP, '' when nothing. */
        public readonly string $error = ''
    ) {
    }

    /**
     * One response header.
     *
     * @param string $name Header name, any case.
     * @return string|null Its value, or null when it was not sent.
     */
    public function header(string $name): ?string {
        return $this->headers[strtolower($name)] ?? null;
    }
}
