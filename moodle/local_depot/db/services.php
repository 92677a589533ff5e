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
 * Web service functions of local_depot and the service depot's driver uses.
 *
 * @package    local_depot
 * @copyright  2026 depot contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

defined('MOODLE_INTERNAL') || die();

$functions = [
    'local_depot_store_file' => [
        'classname' => 'local_depot\external\store_file',
        'description' => 'Files an uploaded draft as an archive in a course\'s file area; never replaces an existing file.',
        'type' => 'write',
        'capabilities' => 'local/depot:manage',
    ],
    'local_depot_get_file' => [
        'classname' => 'local_depot\external\get_file',
        'description' => 'Tells where an archive is (for webservice/pluginfile.php) and returns its manifest.',
        'type' => 'read',
        'capabilities' => 'local/depot:manage',
    ],
    'local_depot_delete_file' => [
        'classname' => 'local_depot\external\delete_file',
        'description' => 'Deletes an archive and its manifest.',
        'type' => 'write',
        'capabilities' => 'local/depot:manage',
    ],
    'local_depot_list_files' => [
        'classname' => 'local_depot\external\list_files',
        'description' => 'Lists the archives of a course\'s file area with their manifests, one page at a time.',
        'type' => 'read',
        'capabilities' => 'local/depot:manage',
    ],
    'local_depot_get_space' => [
        'classname' => 'local_depot\external\get_space',
        'description' => 'Reports the bytes the archives take and the free space of the site\'s file store.',
        'type' => 'read',
        'capabilities' => 'local/depot:manage',
    ],
];

$services = [
    // Upload and download must be allowed: webservice/upload.php and webservice/pluginfile.php
    // refuse a token of a service without them. Only users an administrator authorises may use it.
    'depot archive storage' => [
        'shortname' => 'local_depot',
        'functions' => [
            'core_webservice_get_site_info',
            'local_depot_store_file',
            'local_depot_get_file',
            'local_depot_delete_file',
            'local_depot_list_files',
            'local_depot_get_space',
        ],
        'restrictedusers' => 1,
        'enabled' => 1,
        'uploadfiles' => 1,
        'downloadfiles' => 1,
    ],
];
