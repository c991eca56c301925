# Installs the AEGIS Edge CLI (aegis.exe) for the current user from an aegis-controller's bootstrap
# URL, checked against the release's manifest, and optionally enrolls this host. PowerShell 5.1 and 7.
#
#   iwr -useb https://controller.example.com/install.ps1 | iex
#   & ([scriptblock]::Create((iwr -useb https://controller.example.com/install.ps1))) -Token <token>
#
# Overrides (environment variables; the parameters below take precedence):
#   AEGIS_BOOTSTRAP_URL     where the releases are (default: the controller that served this script)
#   AEGIS_VERSION           the release to install (default: the one the controller serves)
#   AEGIS_INSTALL_DIR       default: %LOCALAPPDATA%\Programs\aegis
#   AEGIS_RELEASE_PUBKEY    the release public key (base64 line of release.pub), pinned out of band
#   AEGIS_TOKEN             an enrollment token (like -Token)
#   AEGIS_REQUIRE_SIGNATURE=1  refuse to install when minisign.exe is not on PATH
#
# Signature: PowerShell 5.1 (.NET Framework) has no Ed25519, so the manifest's signature is checked
# with minisign.exe when it is on PATH; without it the script says loudly that only the SHA-256
# against the manifest is checked. The script is one function called on its last line.
param(
    [string]$Token = $env:AEGIS_TOKEN,
    [string]$TokenFile = '',
    [string]$Version = $env:AEGIS_VERSION,
    [string]$InstallDir = $env:AEGIS_INSTALL_DIR
)

function Install-AegisEdge {
    param([string]$Token, [string]$TokenFile, [string]$Version, [string]$InstallDir)
    $ErrorActionPreference = 'Stop'
    $ProgressPreference = 'SilentlyContinue'
    # Windows PowerShell 5.1 may default to TLS 1.0; the controller speaks TLS 1.2 or later.
    [Net.ServicePointManager]::SecurityProtocol = [Net.ServicePointManager]::SecurityProtocol -bor [Net.SecurityProtocolType]::Tls12

    $servedUrl = '__AEGIS_BOOTSTRAP_URL__'
    $servedVersion = '__AEGIS_VERSION__'
    $servedPubkey = '__AEGIS_RELEASE_PUBKEY__'
    $servedCa = '__AEGIS_CA_PEM__'
    # An unrendered copy (e.g. from the source tree) still has its placeholders.
    if ($servedUrl.StartsWith('__AEGIS_')) { $servedUrl = '' }
    if ($servedVersion.StartsWith('__AEGIS_')) { $servedVersion = '' }
    if ($servedPubkey.StartsWith('__AEGIS_')) { $servedPubkey = '' }
    if ($servedCa.StartsWith('__AEGIS_')) { $servedCa = '' }

    $baseUrl = if ($env:AEGIS_BOOTSTRAP_URL) { $env:AEGIS_BOOTSTRAP_URL } else { $servedUrl }
    $baseUrl = $baseUrl.TrimEnd('/')
    if (-not $baseUrl) { throw 'aegis-install: no bootstrap URL: set $env:AEGIS_BOOTSTRAP_URL' }
    if (-not $Version) { $Version = if ($servedVersion) { $servedVersion } else { 'latest' } }
    if ($Version -notmatch '^(latest|\d{1,6}\.\d{1,6}\.\d{1,6}(-[0-9A-Za-z.-]{1,40})?)$') {
        throw "aegis-install: $Version is not a release version (1.2.3) or latest"
    }
    $pubkey = if ($env:AEGIS_RELEASE_PUBKEY) { $env:AEGIS_RELEASE_PUBKEY } else { $servedPubkey }
    if ($Token -and $TokenFile) { throw 'aegis-install: pass -Token or -TokenFile, not both' }

    $arch = Get-AegisArch
    if (-not $InstallDir) { $InstallDir = Join-Path $env:LOCALAPPDATA 'Programs\aegis' }
    $work = Join-Path ([IO.Path]::GetTempPath()) ('aegis-install-' + [Guid]::NewGuid().ToString('N'))
    New-Item -ItemType Directory -Path $work | Out-Null
    $staged = $null
    try {
        $releaseUrl = "$baseUrl/releases/$Version"
        Write-Host "aegis-install: release $Version for windows/$arch from $baseUrl"
        $manifestPath = Join-Path $work 'manifest.json'
        $signaturePath = Join-Path $work 'manifest.json.minisig'
        Get-AegisFile "$releaseUrl/manifest.json" $manifestPath 65536
        Get-AegisFile "$releaseUrl/manifest.json.minisig" $signaturePath 4096
        Test-AegisSignature $manifestPath $signaturePath $pubkey

        $manifest = Get-Content -Raw -Path $manifestPath | ConvertFrom-Json
        if ($Version -ne 'latest' -and $manifest.version -ne $Version) {
            throw "aegis-install: asked for $Version, the manifest is for $($manifest.version)"
        }
        $artifact = $manifest.artifacts |
            Where-Object { $_.name -eq 'aegis' -and $_.os -eq 'windows' -and $_.arch -eq $arch } |
            Select-Object -First 1
        if (-not $artifact) { throw "aegis-install: release $($manifest.version) has no aegis for windows/$arch" }
        if ($artifact.file -notmatch '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$') {
            throw "aegis-install: the manifest names a bad file: $($artifact.file)"
        }

        $download = Join-Path $work 'aegis.exe'
        Get-AegisFile "$baseUrl/releases/$($manifest.version)/$($artifact.file)" $download ([long]$artifact.size)
        if ((Get-Item -Path $download).Length -ne [long]$artifact.size) {
            throw "aegis-install: $($artifact.file) is not the $($artifact.size) bytes the manifest says"
        }
        $actual = (Get-FileHash -Algorithm SHA256 -Path $download).Hash.ToLowerInvariant()
        if ($actual -ne $artifact.sha256) {
            throw "aegis-install: SHA-256 mismatch for $($artifact.file): expected $($artifact.sha256), got $actual"
        }
        Write-Host "aegis-install: SHA-256 of $($artifact.file) matches the manifest"

        # Atomic install: a temporary file beside the target, checked, then moved over it.
        New-Item -ItemType Directory -Force -Path $InstallDir | Out-Null
        $staged = Join-Path $InstallDir ('.aegis-' + [Guid]::NewGuid().ToString('N') + '.exe')
        Copy-Item -Path $download -Destination $staged
        $printed = (& $staged --version) -join ' '
        # `aegis --version` prints the version first (then, in a release build, its key).
        if ($LASTEXITCODE -ne 0 -or ($printed -split ' ')[0] -ne $manifest.version) {
            throw "aegis-install: the new binary says '$printed', the manifest says $($manifest.version)"
        }
        $target = Join-Path $InstallDir 'aegis.exe'
        Move-Item -Force -Path $staged -Destination $target
        $staged = $null
        Write-Host "aegis-install: installed $target ($(& $target --version))"
        Add-AegisToUserPath $InstallDir

        $caFile = $null
        if ($servedCa) {
            # Kept beside the binary: enroll copies it for the daemon.
            $caFile = Join-Path $InstallDir 'controller-ca.pem'
            Set-Content -Path $caFile -Value $servedCa -Encoding ascii
        }
        if ($Token -or $TokenFile) { Invoke-AegisEnroll $target $Token $TokenFile $caFile }
    } finally {
        if ($staged -and (Test-Path $staged)) { Remove-Item -Force $staged }
        Remove-Item -Recurse -Force -Path $work -ErrorAction SilentlyContinue
    }
}

function Get-AegisArch {
    # A 32-bit PowerShell on 64-bit Windows reports the real machine in PROCESSOR_ARCHITEW6432.
    $machine = if ($env:PROCESSOR_ARCHITEW6432) { $env:PROCESSOR_ARCHITEW6432 } else { $env:PROCESSOR_ARCHITECTURE }
    switch ($machine) {
        'AMD64' { return 'x86_64' }
        'ARM64' { return 'arm64' }
        default { throw "aegis-install: unsupported architecture $machine (x86_64 and arm64 only)" }
    }
}

function Get-AegisFile([string]$Url, [string]$Path, [long]$Limit) {
    try {
        # A stalled controller fails the install instead of hanging it: PowerShell 7 counts the
        # whole transfer against -TimeoutSec; 5.1 the wait for an answer, then a read that stalls
        # for 5 minutes (.NET's ReadWriteTimeout).
        Invoke-WebRequest -UseBasicParsing -TimeoutSec 600 -Uri $Url -OutFile $Path
    } catch {
        throw "aegis-install: download failed: $Url ($($_.Exception.Message)). A private CA must be trusted first: Import-Certificate -FilePath ca.pem -CertStoreLocation Cert:\CurrentUser\Root"
    }
    $size = (Get-Item -Path $Path).Length
    if ($size -gt $Limit) { throw "aegis-install: $Url is $size bytes, more than the $Limit expected" }
}

function Test-AegisSignature([string]$Manifest, [string]$Signature, [string]$Pubkey) {
    $minisign = Get-Command minisign.exe -ErrorAction SilentlyContinue
    if ($minisign -and $Pubkey) {
        & $minisign.Source -V -q -P $Pubkey -m $Manifest -x $Signature | Out-Null
        if ($LASTEXITCODE -ne 0) { throw "aegis-install: the manifest's signature does not verify with key $Pubkey" }
        Write-Host 'aegis-install: manifest signature verified (minisign)'
        return
    }
    if ($env:AEGIS_REQUIRE_SIGNATURE -eq '1') {
        throw 'aegis-install: AEGIS_REQUIRE_SIGNATURE=1 but minisign.exe is not on PATH (or no release key is known)'
    }
    Write-Warning 'THE MANIFEST SIGNATURE IS NOT CHECKED: minisign.exe is not on PATH, and PowerShell 5.1 has no Ed25519.'
    Write-Warning 'Only the SHA-256 against the manifest this controller sent is checked. Put minisign.exe on PATH to check the signature.'
}

function Add-AegisToUserPath([string]$Dir) {
    $userPath = [Environment]::GetEnvironmentVariable('Path', 'User')
    $entries = @($userPath -split ';' | Where-Object { $_ })
    if ($entries -notcontains $Dir) {
        [Environment]::SetEnvironmentVariable('Path', (($entries + $Dir) -join ';'), 'User')
        Write-Host "aegis-install: added $Dir to your user PATH (new terminals see it)"
    }
    if (($env:Path -split ';') -notcontains $Dir) { $env:Path = "$env:Path;$Dir" }
}

function Invoke-AegisEnroll([string]$Exe, [string]$Token, [string]$TokenFile, [string]$CaFile) {
    $enrollArgs = @('edge', 'enroll', '--token-file', '-')
    if ($CaFile) { $enrollArgs += @('--ca-file', $CaFile) }
    Write-Host 'aegis-install: enrolling this host'
    # On standard input, so the token never shows in the process list.
    $secret = if ($TokenFile) { (Get-Content -Raw -Path $TokenFile).Trim() } else { $Token }
    $secret | & $Exe @enrollArgs
    if ($LASTEXITCODE -ne 0) { throw "aegis-install: enrollment failed (exit $LASTEXITCODE)" }
}

Install-AegisEdge -Token $Token -TokenFile $TokenFile -Version $Version -InstallDir $InstallDir
