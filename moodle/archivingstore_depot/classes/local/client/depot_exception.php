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
 * A failure as depot reports it (CONTRACT §2 error codes, §6 HTTP errors), or as the way to depot failed.
 *
 * @package    archivingstore_depot
 * @copyright  2026 depot contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class depot_exception extends \Exception {
    /** @var string depot's error code: invalid_task, not_found, retention, integrity, auth, unavailable, … */
    public readonly string $depotcode;

    /** @var int HTTP status of the answer, 0 when there was none. */
    public readonly int $httpstatus;

    /** @var string|null The task field the error is about, when depot named one. */
    public readonly ?string $field;

    /** @var string|null The task the error belongs to, when one was queued. */
    public readonly ?string $taskid;

    /**
     * Creates the exception.
     *
     * @param string $depotcode depot's error code.
     * @param string $message What happened (never a credential).
     * @param int $httpstatus HTTP status, 0 when there was none.
     * @param string|null $field The field depot named.
     * @param string|null $taskid The task, when one was queued.
     */
    public function __construct(string $depotcode, string $message, int $httpstatus = 0, ?string $field = null,
            ?string $taskid = null) {
        parent::__construct("{$depotcode}: {$message}");
        $this->depotcode = $depotcode;
        $this->httpstatus = $httpstatus;
        $this->field = $field;
        $this->taskid = $taskid;
    }
}
