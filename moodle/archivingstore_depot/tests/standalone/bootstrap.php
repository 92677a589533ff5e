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

/**
 * Bootstrap of the standalone PHPUnit suite: stand-ins, then the plugin's classes.
 *
 * @package    archivingstore_depot
 * @copyright  2026 depot contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require_once(__DIR__ . '/stand_ins.php');
foreach (['transport', 'response', 'depot_exception', 'curl_transport', 'depot_client'] as $class) {
    require_once(__DIR__ . "/../../classes/local/client/{$class}.php");
}
require_once(__DIR__ . '/../../classes/local/job_facts.php');
require_once(__DIR__ . '/../../classes/archivingstore.php');
require_once(__DIR__ . '/depot_env.php');
