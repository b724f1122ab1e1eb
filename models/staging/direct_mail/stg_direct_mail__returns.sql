with

source as (

    select * from {{ source('direct_mail', 'returns') }}

),

renamed as (

    select
        identity,
        reason,
        returned_at,
        source_file,
        source_sha256,
        source_line,
        ingested_at

    from source

)

select * from renamed
