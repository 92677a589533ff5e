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
 * STAND-INS, NOT MOODLE, NOT local_archiving: the least of their API that archivingstore_depot touches,
 * so that the plugin's glue runs under plain PHPUnit where neither can be installed. Each mirrors the
 * signature of the real code named beside it, and behaves as it does in the respects the plugin relies
 * on, and no more:
 *  - \local_archiving\driver\archivingstore, \local_archiving\driver\base: the abstract methods of
 *    local_archiving 1.0's classes/driver/archivingstore.php (no behaviour);
 *  - \local_archiving\type\storage_tier: the enum cases of classes/type/storage_tier.php;
 *  - \local_archiving\exception\storage_exception: a moodle_exception, as classes/exception/storage_exception.php;
 *  - \local_archiving\file_handle: create() with the named arguments of classes/file_handle.php, read-only
 *    properties through __get (no database: handles live in a static list);
 *  - \stored_file: a file with a name, size, mimetype and get_content_file_handle() (Moodle's reads the pool);
 *  - \file_storage::create_file_from_pathname(): copies the file into a private pool and refuses a second
 *    file at the same contextid/component/filearea/itemid/filepath/filename (Moodle's unique pathnamehash);
 *  - get_config()/set_config(), make_request_directory(), get_file_storage(): as Moodle's, in memory.
 * Everything here is for tests/standalone only; Moodle never loads it.
 *
 * @package    archivingstore_depot
 * @copyright  2026 depot contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

// phpcs:disable

namespace {
    define('MOODLE_INTERNAL', true);

    class moodle_exception extends Exception {
        public $errorcode;
        public $module;
        public $a;
        public $debuginfo;
        public function __construct($errorcode, $module = '', $link = '', $a = null, $debuginfo = null) {
            $this->errorcode = $errorcode;
            $this->module = $module;
            $this->a = $a;
            $this->debuginfo = $debuginfo;
            parent::__construct("{$module}/{$errorcode}" . ($debuginfo ? ": {$debuginfo}" : ''));
        }
    }

    class coding_exception extends moodle_exception {
        public function __construct($hint = '', $debuginfo = null) {
            parent::__construct('codingerror', 'debug', '', $hint, $debuginfo);
        }
    }

    class stored_file {
        public function __construct(
            private string $path,
            private string $filename,
            private string $mimetype = 'application/octet-stream',
            public array $record = []
        ) {
        }
        public function get_filename() {
            return $this->filename;
        }
        public function get_filesize() {
            return filesize($this->path);
        }
        public function get_mimetype() {
            return $this->mimetype;
        }
        public function get_content_file_handle($type = 1) {
            return fopen($this->path, 'rb');
        }
        public function get_content() {
            return file_get_contents($this->path);
        }
    }

    class file_storage {
        private array $files = [];
        public function __construct(private string $pool) {
        }
        public function create_file_from_pathname($filerecord, $pathname) {
            $r = (array) $filerecord;
            $id = implode('|', [$r['contextid'], $r['component'], $r['filearea'], $r['itemid'], $r['filepath'], $r['filename']]);
            if (isset($this->files[$id])) {
                throw new moodle_exception('storedfilenotcreated', '', '', null, 'a file exists at ' . $id);
            }
            $copy = $this->pool . '/' . sha1($id);
            copy($pathname, $copy);
            return $this->files[$id] = new stored_file($copy, $r['filename'], 'application/octet-stream', $r);
        }
    }

    $GLOBALS['STANDIN_CONFIG'] = [];
    $GLOBALS['STANDIN_DIRS'] = [];

    function get_config($plugin, $name = null) {
        $values = $GLOBALS['STANDIN_CONFIG'][$plugin] ?? [];
        return $name === null ? (object) $values : ($values[$name] ?? false);
    }

    function set_config($name, $value, $plugin = null) {
        $GLOBALS['STANDIN_CONFIG'][$plugin][$name] = $value;
        return true;
    }

    function make_request_directory() {
        $dir = sys_get_temp_dir() . '/archivingstore-depot-' . bin2hex(random_bytes(6));
        mkdir($dir, 0700);
        $GLOBALS['STANDIN_DIRS'][] = $dir;
        return $dir;
    }

    function get_file_storage() {
        static $fs = null;
        return $fs ??= new file_storage(make_request_directory());
    }
}

namespace local_archiving\type {
    enum storage_tier {
        case LOCAL;
        case REMOTE_FAST;
        case REMOTE_SLOW;
    }
}

namespace local_archiving\exception {
    class storage_exception extends \moodle_exception {
    }
}

namespace local_archiving\driver {
    abstract class base {
        public static function is_ready(): bool {
            return true;
        }
    }

    abstract class archivingstore extends base {
        abstract public static function get_storage_tier(): \local_archiving\type\storage_tier;
        abstract public static function supports_retrieve(): bool;
        abstract public function is_available(): bool;
        abstract public function get_free_bytes(): ?int;
        abstract public function store(int $jobid, \stored_file $file, string $path): \local_archiving\file_handle;
        abstract public function retrieve(\local_archiving\file_handle $handle, \stdClass $fileinfo): \stored_file;
        abstract public function delete(\local_archiving\file_handle $handle, bool $strict = false): void;
    }
}

namespace local_archiving {
    final class file_handle {
        public static array $created = [];
        protected function __construct(
            protected readonly int $id,
            protected readonly int $jobid,
            protected readonly string $archivingstorename,
            protected bool $deleted,
            protected readonly string $filename,
            protected readonly string $filepath,
            protected readonly int $filesize,
            protected readonly string $sha256sum,
            protected readonly string $mimetype,
            protected readonly int $timecreated,
            protected readonly int $timemodified,
            protected readonly string $filekey = ''
        ) {
        }
        public static function create(int $jobid, string $archivingstorename, string $filename, string $filepath, int $filesize,
                string $sha256sum, string $mimetype, string $filekey = ''): file_handle {
            if (preg_match('/^[a-f0-9]{64}$/', $sha256sum) !== 1) {
                throw new \coding_exception('invalid_sha256sum');
            }
            $handle = new self(count(self::$created) + 1, $jobid, $archivingstorename, false, $filename, $filepath, $filesize,
                $sha256sum, $mimetype, time(), time(), $filekey);
            return self::$created[] = $handle;
        }
        public function __get(string $name): mixed {
            if (property_exists($this, $name)) {
                return $this->$name;
            }
            throw new \coding_exception('Invalid property: ' . $name);
        }
    }
}
