"""Seedbox Manager: hot (NVMe) to warm (Synology) relocation of seeding torrents.

`state` defines the `.state` contract written by `rush seedbox arr-hook`, `arr` turns
Sonarr/Radarr custom-script environments into states, `rules` decides what moves (pure),
`relocator` performs the moves through qBittorrent, `kpis` summarises the attempts.
"""
